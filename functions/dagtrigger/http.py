"""One keep-alive HTTP session per process, on the standard library's http.client.

The warm path of a trigger is one POST on a connection kept open since the previous event, so the
session is a thin pool of http.client connections per origin: nothing is parsed or built per
request that could be kept. urllib3 (shipped by both clouds' runtimes) is only loaded for SDKs that
need a pool of theirs (google-auth's token requests).
"""

from __future__ import annotations

import http.client
import json
import math
import select
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from dagtrigger.errors import ConfigurationError, TransientTriggerError

if TYPE_CHECKING:
    import urllib3

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    """Connections kept alive across events; connection problems become TransientTriggerError.

    Thread-safe: each request takes an idle connection of its origin (or opens one) and gives it
    back afterwards, so concurrent requests never share a connection. A request is never re-sent
    by the session: a connection the server closed while idle is noticed before it is reused, and
    any other failure is left to the caller's retry policy (triggers are idempotent by run id).
    """

    def __init__(self, timeout: float = 10.0, maxsize: int = 10) -> None:
        self.timeout = timeout
        self._connect_timeout = min(timeout, 5.0)
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
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
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
            if connection.sock is None:
                _connect(connection, read_timeout=self.timeout)
            connection.request(method, slash + path or "/", body=body, headers=all_headers)
            raw = connection.getresponse()
            data = raw.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise TransientTriggerError(
                f"{method} {_without_query(url)} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if raw.will_close:
            connection.close()
        else:
            origin.checkin(connection)
        return Response(
            raw.status, data, dict(raw.headers), tuple(raw.headers.get_all("Set-Cookie") or ())
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
        host, port = _host_and_port(netloc, _DEFAULT_PORTS[scheme])
        with self._lock:
            key = scheme + "://" + netloc
            origin = self._origins.get(key)
            if origin is None:
                if scheme == "https" and self._tls is None:
                    # The system's trust store, or SSL_CERT_FILE / SSL_CERT_DIR when set.
                    self._tls = ssl.create_default_context()
                origin = _Origin(
                    host, port, self._connect_timeout, self._maxsize,
                    self._tls if scheme == "https" else None,
                )  # fmt: skip
                self._origins[key] = origin
            return origin


class _Origin:
    """The idle keep-alive connections to one scheme://host:port, most recently used last."""

    def __init__(
        self,
        host: str,
        port: int,
        connect_timeout: float,
        maxsize: int,
        tls: ssl.SSLContext | None,
    ) -> None:
        self._host = host
        self._port = port
        self._connect_timeout = connect_timeout
        self._maxsize = maxsize
        self._tls = tls
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def checkout(self) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not _closed_by_peer(connection):
                    return connection
                connection.close()
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=self._tls
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)

    def checkin(self, connection: http.client.HTTPConnection) -> None:
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


def _connect(connection: http.client.HTTPConnection, read_timeout: float) -> None:
    """Connect within the connect timeout, then wait up to the read timeout for each answer."""
    connection.connect()
    if connection.sock is not None:
        connection.sock.settimeout(read_timeout)
        # Small requests go out at once rather than waiting on the previous segment's ACK.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """An idle connection with something to read has been closed (or broken) by the server."""
    sock = connection.sock
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _host_and_port(netloc: str, default_port: int) -> tuple[str, int]:
    host, port = netloc.rsplit("@", 1)[-1], default_port
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
