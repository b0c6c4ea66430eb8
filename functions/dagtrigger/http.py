"""One keep-alive HTTP session per process: a small pool of HTTP/1.1 connections per origin.

The warm path of a trigger is one POST on a connection kept open since the previous event; the
connections (dagtrigger.http1) write each request in one piece and parse only what framing needs.
urllib3 (shipped by both clouds' runtimes) is only loaded for SDKs that need a pool of theirs
(google-auth's token requests).
"""

from __future__ import annotations

import json
import logging
import math
import ssl
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from dagtrigger.errors import ConfigurationError, TransientTriggerError
from dagtrigger.http1 import Connection, ProtocolError

if TYPE_CHECKING:
    import urllib3

_JSON_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Accept-Encoding": "identity",
    "User-Agent": "dagtrigger",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))  # json.dumps would build one per call
_log = logging.getLogger(__name__)


class Headers(Mapping[str, str]):
    """Header fields looked up by name in any case; a repeated field keeps its last value."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        items = fields.items() if isinstance(fields, Mapping) else fields
        self._fields = {name.lower(): value for name, value in items}

    @classmethod
    def lowered(cls, fields: dict[str, str]) -> Headers:
        """Headers over `fields`, whose names are lower-case already (taken, not copied)."""
        headers = cls.__new__(cls)
        headers._fields = fields
        return headers

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


@dataclass(frozen=True, slots=True)
class EncodedJson:
    """A JSON value with its JSON text made already: sent as the text, handed to SDKs as the value."""

    value: Any
    text: str


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=Headers)
    set_cookies: tuple[str, ...] = ()  # each Set-Cookie header: they cannot be folded into one

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            object.__setattr__(self, "headers", Headers(self.headers))

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
        value = self.headers.get("Retry-After")
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
    """Connections kept alive across events; connection problems become TransientTriggerError.

    Thread-safe: each request takes an idle connection of its origin (or opens one) and gives it
    back afterwards, so concurrent requests never share a connection. A request is never re-sent
    by the session: a connection the server closed while idle is noticed before it is reused, and
    any other failure is left to the caller's retry policy (triggers are idempotent by run id).
    """

    def __init__(self, timeout: float = 10.0, maxsize: int = 10) -> None:
        self.timeout = timeout
        self._maxsize = maxsize  # idle connections kept per origin
        self._origins: dict[str, _Origin] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._urllib3_pool: urllib3.PoolManager | None = None

    @property
    def pool(self) -> urllib3.PoolManager:
        """A urllib3 pool, for SDK transports that take one (google-auth)."""
        with self._lock:
            if self._urllib3_pool is None:
                import urllib3

                self._urllib3_pool = urllib3.PoolManager(
                    maxsize=self._maxsize, block=False, retries=False
                )
            return self._urllib3_pool

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
        if isinstance(json_body, EncodedJson):
            body = json_body.text.encode()
        elif json_body is not None:
            body = _COMPACT_JSON.encode(json_body).encode()
        elif form is not None:
            body = urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        if headers:
            all_headers.update(headers)
        scheme, _, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        origin = self._origins.get(scheme + "://" + netloc) or self._origin(scheme, netloc)
        connection = origin.checkout()
        try:
            answer = connection.request(method, slash + path or "/", all_headers, body)
        except (OSError, ProtocolError) as exc:
            connection.close()
            raise TransientTriggerError(
                f"{method} {_without_query(url)} failed: {type(exc).__name__}: {exc}"
            ) from exc
        except ValueError as exc:  # a header value that cannot be sent: the same every time
            connection.close()
            raise ConfigurationError(f"{method} {_without_query(url)}: {exc}") from exc
        if answer.reusable:
            origin.checkin(connection)
        else:
            connection.close()
        if _log.isEnabledFor(logging.DEBUG):  # never headers or bodies: they carry credentials
            _log.debug(
                "%s %s answered %d (%d bytes)",
                method, _without_query(url), answer.status, len(answer.body),
            )  # fmt: skip
        return Response(
            answer.status, answer.body, Headers.lowered(answer.fields), answer.set_cookies
        )

    def close(self) -> None:
        """Close every idle connection (the next request opens a new one)."""
        with self._lock:
            origins = list(self._origins.values())
        for origin in origins:
            origin.close()

    def _origin(self, scheme: str, netloc: str) -> _Origin:
        if scheme not in _DEFAULT_PORTS or not netloc:
            raise ConfigurationError(f"cannot reach {scheme}://{netloc}: not an http(s) URL")
        with self._lock:
            key = scheme + "://" + netloc
            origin = self._origins.get(key)
            if origin is None:
                if scheme == "https" and self._tls is None:
                    # The system's trust store, or SSL_CERT_FILE / SSL_CERT_DIR when set.
                    self._tls = ssl.create_default_context()
                origin = _Origin(
                    netloc, _DEFAULT_PORTS[scheme], self.timeout, self._maxsize,
                    self._tls if scheme == "https" else None,
                )  # fmt: skip
                self._origins[key] = origin
            return origin


class _Origin:
    """The idle keep-alive connections to one scheme://host:port, most recently used last."""

    def __init__(
        self, netloc: str, default_port: int, timeout: float, maxsize: int,
        tls: ssl.SSLContext | None,
    ) -> None:  # fmt: skip
        self._host_header = netloc.rsplit("@", 1)[-1]
        self._host, self._port = _host_and_port(self._host_header, default_port)
        self._timeout = timeout
        self._tls = tls
        self._maxsize = maxsize
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def checkout(self) -> Connection:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed_by_peer():
                    return connection
                connection.close()
        _log.debug("opening a connection to %s:%d", self._host, self._port)
        return Connection(
            self._host, self._port, self._host_header,
            connect_timeout=min(self._timeout, 5.0), read_timeout=self._timeout, tls=self._tls,
        )  # fmt: skip

    def checkin(self, connection: Connection) -> None:
        with self._lock:
            if len(self._idle) < self._maxsize:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _host_and_port(host_header: str, default_port: int) -> tuple[str, int]:
    host, port = host_header, default_port
    if host.startswith("["):  # an IPv6 literal: [::1]:8080
        literal, _, rest = host[1:].partition("]")
        host = literal
        if rest.startswith(":") and rest[1:]:
            port = int(rest[1:])
        return host, port
    name, colon, number = host.rpartition(":")
    if colon and number.isdigit():
        return name, int(number)
    return host, port


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]
