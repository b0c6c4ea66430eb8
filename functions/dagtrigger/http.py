"""One keep-alive HTTP session per process, on urllib3 (already shipped by both clouds' runtimes)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from dagtrigger.errors import TransientTriggerError

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    set_cookies: tuple[str, ...] = ()  # each Set-Cookie header: they cannot be folded into one

    def json(self) -> Any:
        """The parsed body, or None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def detail(self, limit: int = 300) -> str:
        """Airflow's own explanation (`detail`, `error` or `message`), else the start of the body."""
        payload = self.json()
        if isinstance(payload, dict):
            for key in ("detail", "error", "message", "title"):
                value = payload.get(key)
                if value:
                    text = value if isinstance(value, str) else json.dumps(value)
                    return text[:limit]
        return self.body[:limit].decode("utf-8", "replace").strip()

    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait (Retry-After as seconds or an HTTP date)."""
        value = self.headers.get("Retry-After") or self.headers.get("retry-after")
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            return max(seconds, 0.0) if math.isfinite(seconds) else None
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # the asctime form carries no zone; HTTP dates are always GMT
            when = when.replace(tzinfo=UTC)
        return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class HttpSession:
    """Pooled connections reused across events; connection problems become TransientTriggerError."""

    def __init__(self, timeout: float = 10.0, maxsize: int = 10) -> None:
        self.timeout = timeout
        self._timeout = urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
        self._pool = urllib3.PoolManager(maxsize=maxsize, block=False, retries=False)
        # One connection pool per origin, looked up without re-parsing on the warm path.
        self._origins: dict[str, urllib3.HTTPConnectionPool] = {}

    @property
    def pool(self) -> urllib3.PoolManager:
        """The shared connection pool, for SDK transports that take one (google-auth)."""
        return self._pool

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Response:
        all_headers: dict[str, str] = dict(_JSON_HEADERS)
        body: bytes | None = None
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
        elif form is not None:
            body = urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        if headers:
            all_headers.update(headers)
        scheme, _, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        origin = f"{scheme}://{netloc}"
        try:
            pool = self._origins.get(origin)
            if pool is None:
                pool = self._origins.setdefault(origin, self._pool.connection_from_url(origin))
            raw = pool.urlopen(
                method,
                slash + path or "/",
                body=body,
                headers=all_headers,
                timeout=self._timeout,
                redirect=False,
                retries=False,
                assert_same_host=False,
            )
        except Urllib3Error as exc:
            raise TransientTriggerError(
                f"{method} {_without_query(url)} failed: {type(exc).__name__}: {_reason(exc)}"
            ) from exc
        return Response(
            raw.status, raw.data, dict(raw.headers), tuple(raw.headers.getlist("Set-Cookie"))
        )


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def _reason(exc: Urllib3Error) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc)
