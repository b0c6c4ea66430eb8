"""One HTTP session per process, on urllib3: kept-alive connections, proxies, one deadline.

Every call to Airflow, to the Composer API and to Google's token endpoints goes through one
HttpSession, so they share its connections, its proxy choice and its time limits:

- Proxies follow the standard library's rules (and requests'): HTTPS_PROXY for https URLs,
  HTTP_PROXY for http ones, NO_PROXY for the hosts that bypass them, lower-case names first.
- A request ends by AIRFLOW_TIMEOUT or by the time the trigger has left (dagtrigger.deadline),
  whichever comes first, whatever the server does: urllib3's timeouts bound each socket read,
  so a watch cuts the connection when the time is up (an answer trickled a byte at a time, or
  endless `100 Continue` lines, would otherwise never time out).
- Redirects are never followed: a 3xx is handed to the caller, which treats it as the
  configuration problem it is (AIRFLOW_URL points somewhere else).
- Failures are classified once, here: no answer is a TransientTriggerError; a request that
  cannot be sent as configured (an unsendable header value, a refused certificate, a proxy
  asking for credentials) is a ConfigurationError, so the event waits for the fix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

import urllib3
from urllib3._collections import HTTPHeaderDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, LocationValueError, ProxyError, SSLError

from dagtrigger.deadline import time_left
from dagtrigger.errors import ConfigurationError, ErrorKind, TransientTriggerError
from dagtrigger.redact import redact, remember_secret

MAX_BODY_BYTES = 8 * 1024 * 1024  # Airflow's answers to these calls are a few KB
MAX_RETRY_AFTER = 3600.0
_QUOTED_TEXT_BOUND = (
    64 * 1024
)  # of an answer, the most that is redacted to quote its start  # seconds: a longer Retry-After is a server's mistake, not a plan
_JSON_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Accept-Encoding": "identity",
    "User-Agent": "dagtrigger",
}
_PROXY_CREDENTIALS_FIX = (
    "put its user name and password in the proxy variable's URL, before the host, as "
    "USER:PASSWORD followed by @ (percent-encode any @, : or / in them)."
)
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=HTTPHeaderDict)  # any case
    set_cookies: tuple[str, ...] = ()  # each Set-Cookie header: they cannot be folded into one

    def __post_init__(self) -> None:
        if not isinstance(self.headers, HTTPHeaderDict):
            object.__setattr__(self, "headers", HTTPHeaderDict(self.headers))

    def json(self) -> Any:
        """The parsed body, or None when it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, RecursionError):
            return None

    def detail(self, limit: int = 300) -> str:
        """Airflow's own explanation (`detail`, `error` or `message`), else the start of the body,
        without credentials: a server that echoes the request would otherwise show them."""
        payload = self.json()
        text = self.body.decode("utf-8", "replace")
        if isinstance(payload, dict):
            for key in ("detail", "error", "message", "title"):
                value = payload.get(key)
                if value:
                    text = value if isinstance(value, str) else json.dumps(value)
                    break
        # Redacted whole up to a bound, then cut: cutting first could split a secret in two.
        return redact(text[:_QUOTED_TEXT_BOUND]).strip()[:limit]

    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait (Retry-After as seconds or an HTTP date), at most
        MAX_RETRY_AFTER; None when the header is absent or unusable."""
        value = self.headers.get("Retry-After")
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, OverflowError):
                return None
            if when.tzinfo is None:  # the asctime form carries no zone; HTTP dates are always GMT
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        if math.isnan(seconds):
            return None
        return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class HttpSession:
    """Connections kept alive across events, through the proxy the environment names.

    Thread-safe (urllib3's pools hand each request its own connection). A request is never
    re-sent here: every failure is left to the caller's retry policy, since triggers are
    idempotent by run id.
    """

    def __init__(self, timeout: float = 10.0, maxsize: int = 10) -> None:
        self.timeout = timeout
        self._maxsize = maxsize  # connections kept per origin
        self.proxies = Proxies.from_environment()
        self._managers: dict[tuple[str | None, str], urllib3.PoolManager] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    @property
    def pool(self) -> RoutingPool:
        """A urllib3-like pool for SDK transports that take one (google-auth's token calls)."""
        return RoutingPool(self)

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
        where = f"{method} {_without_query(url)}"
        watch = self._watch(where)
        try:
            answer = self._manager_for(url).request(
                method, url, body=body, headers=all_headers, preload_content=False,
                **self._limits(watch),
            )  # fmt: skip
            try:
                data = _read_body(answer)
            finally:
                answer.release_conn()
            if watch.stop():
                # A connection cut short can still parse as a whole answer (the headers end
                # where the bytes stopped), so nothing read under an expired watch is trusted.
                raise _timed_out(where, watch)
        except Exception as exc:
            raise self._classified(exc, where, watch, url) from exc
        finally:
            watch.stop()
        if _log.isEnabledFor(logging.DEBUG):  # never headers or bodies: they carry credentials
            _log.debug("%s answered %d (%d bytes)", where, answer.status, len(data))
        if answer.status == 407:
            raise ConfigurationError(
                f"{where}: the proxy {self.proxies.describe(url)} asks for credentials (407)",
                fix=_PROXY_CREDENTIALS_FIX,
                status=407,
            )
        return Response(
            answer.status, data, answer.headers, tuple(answer.headers.getlist("Set-Cookie"))
        )

    def open_for_sdk(self, method: str, url: str, **kwargs: Any) -> Any:
        """A urllib3 request as an SDK makes it, with this session's proxies and time limits;
        urllib3's own errors are raised, as the SDK expects."""
        watch = self._watch(f"{method} {_without_query(url)}")
        kwargs.pop("timeout", None)  # the session's limits apply, not the SDK's default
        try:
            answer = self._manager_for(url).request(method, url, **self._limits(watch), **kwargs)
        finally:
            expired = watch.stop()
        if expired:
            raise urllib3.exceptions.TimeoutError(str(_timed_out(f"{method} {url}", watch)))
        return answer

    def close(self) -> None:
        """Close every kept connection (the next request opens a new one)."""
        with self._lock:
            managers = list(self._managers.values())
        for manager in managers:
            manager.clear()

    def _watch(self, where: str) -> _Watch:
        left = time_left()
        seconds = self.timeout if left is None else min(self.timeout, left)
        if seconds <= 0:
            raise TransientTriggerError(
                f"{where} not sent: the trigger's deadline has passed", kind=ErrorKind.TIMEOUT
            )
        return _Watch(seconds)

    def _limits(self, watch: _Watch) -> dict[str, Any]:
        seconds = watch.seconds
        return {"timeout": urllib3.Timeout(connect=seconds, read=seconds), "retries": False,
                "redirect": False}  # fmt: skip

    def _manager_for(self, url: str) -> urllib3.PoolManager:
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise ConfigurationError(f"cannot reach {_without_query(url)}: not an http(s) URL")
        proxy = self.proxies.for_url(url)
        key = (proxy.url if proxy else None, scheme)
        manager = self._managers.get(key)
        if manager is None:
            with self._lock:
                manager = self._managers.get(key)
                if manager is None:
                    manager = self._new_manager(proxy, scheme)
                    self._managers[key] = manager
        return manager

    def _new_manager(self, proxy: Proxy | None, scheme: str) -> urllib3.PoolManager:
        options: dict[str, Any] = {"maxsize": self._maxsize, "block": False}
        if scheme == "https":
            if self._tls is None:
                # The system's trust store, or SSL_CERT_FILE / SSL_CERT_DIR when set.
                self._tls = ssl.create_default_context()
            options["ssl_context"] = self._tls
        manager: urllib3.PoolManager
        if proxy is None:
            manager = urllib3.PoolManager(**options)
        else:
            manager = urllib3.ProxyManager(proxy.url, proxy_headers=proxy.headers, **options)
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager

    def _classified(self, exc: Exception, where: str, watch: _Watch, url: str) -> Exception:
        if isinstance(exc, ConfigurationError | TransientTriggerError):
            return exc
        if watch.ran_out:
            return _timed_out(where, watch)
        if isinstance(exc, ProxyError):
            proxy = self.proxies.describe(url)
            if "407" in str(exc):
                return ConfigurationError(
                    f"{where}: the proxy {proxy} refused the tunnel (407 Proxy Authentication "
                    "Required)",
                    fix=_PROXY_CREDENTIALS_FIX,
                    status=407,
                )
            return TransientTriggerError(
                f"{where} failed through the proxy {proxy}: {_reason(exc)}",
                kind=ErrorKind.UNREACHABLE,
            )
        if isinstance(exc, SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return ConfigurationError(
                f"{where}: the server's TLS certificate is not trusted ({_reason(exc)})",
                fix="if it is signed by a private CA, set SSL_CERT_FILE to a bundle that "
                "includes it.",
                kind=ErrorKind.UNTRUSTED_CERTIFICATE,
            )
        if isinstance(exc, LocationValueError | UnicodeError) or (
            isinstance(exc, ValueError) and not isinstance(exc, HTTPError)
        ):
            # Nothing was sent (an unsendable header value or host): the same every time.
            return ConfigurationError(f"{where} cannot be sent: {_reason(exc)}")
        if isinstance(exc, HTTPError | OSError):
            return TransientTriggerError(f"{where} failed: {_reason(exc)}", kind=_kind_of(exc))
        return exc


class RoutingPool:
    """What google-auth's urllib3 transport needs of a pool: `request`, through the session."""

    def __init__(self, session: HttpSession) -> None:
        self._session = session

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self._session.open_for_sdk(method, url, **kwargs)


@dataclass(frozen=True, slots=True)
class Proxy:
    url: str  # without credentials
    headers: Mapping[str, str]  # Proxy-Authorization, when the variable held credentials
    variable: str  # where it came from, for messages


class Proxies:
    """The proxies the environment names, chosen per URL as the standard library does."""

    def __init__(self, settings: Mapping[str, str]) -> None:
        self._settings = settings  # scheme (and "no") → value, as getproxies_environment gives
        self._chosen: dict[str, Proxy | None] = {}

    @classmethod
    def from_environment(cls) -> Proxies:
        return cls(getproxies_environment())

    def for_url(self, url: str) -> Proxy | None:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        if key not in self._chosen:
            value = self._settings.get(parts.scheme)
            bypass = value is None or proxy_bypass_environment(parts.netloc, self._settings)
            self._chosen[key] = None if bypass else _parse_proxy(value or "", parts.scheme)
        return self._chosen[key]

    def describe(self, url: str) -> str:
        """The proxy a URL goes through, for messages: its address and variable, or 'none'."""
        proxy = self.for_url(url)
        return "none" if proxy is None else f"{proxy.url} (from {proxy.variable})"


def _parse_proxy(value: str, scheme: str) -> Proxy:
    variable = f"{scheme.upper()}_PROXY"
    if "://" not in value:  # "proxy:3128", as requests reads it
        value = "http://" + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{variable} is not an http:// or https:// proxy URL ({redact(value)})",
            fix="set it to e.g. http://proxy.example.com:3128.",
        )
    headers: dict[str, str] = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers = urllib3.make_headers(proxy_basic_auth=credentials)
        remember_secret(unquote(parts.password or ""))
        remember_secret(headers["proxy-authorization"].removeprefix("Basic "))
    host = parts.netloc.rpartition("@")[2]
    return Proxy(f"{parts.scheme}://{host}", headers, variable)


def _read_body(answer: Any) -> bytes:
    data: bytes = answer.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        answer.close()  # the rest is never read: the connection cannot carry another request
        raise TransientTriggerError(
            f"the answer's body is over {MAX_BODY_BYTES} bytes", kind=ErrorKind.SERVER_ERROR
        )
    return data


def _timed_out(where: str, watch: _Watch) -> TransientTriggerError:
    return TransientTriggerError(
        f"{where} got no complete answer within {watch.seconds:.1f} s (AIRFLOW_TIMEOUT, or the "
        "time left of DAGTRIGGER_DEADLINE)",
        kind=ErrorKind.TIMEOUT,
    )


def _kind_of(exc: HTTPError | OSError) -> ErrorKind:
    """What kind of transport failure this is; a refused connection is urllib3's
    NewConnectionError, which subclasses its ConnectTimeoutError without being a timeout."""
    if isinstance(exc, SSLError | ssl.SSLError):
        return ErrorKind.TLS_HANDSHAKE
    if isinstance(exc, TimeoutError) or (
        isinstance(exc, urllib3.exceptions.TimeoutError)
        and not isinstance(exc, urllib3.exceptions.NewConnectionError)
    ):
        return ErrorKind.TIMEOUT
    return ErrorKind.UNREACHABLE


def _reason(exc: BaseException) -> str:
    """What went wrong, from the deepest error urllib3 wrapped (its own text repeats the URL)."""
    while True:
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in exc.args if isinstance(a, BaseException)), None)
        if inner is None and isinstance(exc, HTTPError):
            inner = exc.__cause__
        if inner is None:
            return f"{type(exc).__name__}: {exc}"
        exc = inner


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


class _Watch:
    """Cuts one request's connection when its time is up, in whatever phase the request is.

    urllib3's timeouts bound each socket operation, not a request: a server that sends a byte
    every second never trips a 10 s read timeout. The watch is armed once the request has a
    socket, and shutting the socket down ends the blocked read at once.
    """

    _current: ContextVar[_Watch | None] = ContextVar("dagtrigger_http_watch", default=None)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._ends_at = time.monotonic() + seconds
        self._timer: threading.Timer | None = None
        self._reset: Token[_Watch | None] | None = _Watch._current.set(self)

    @classmethod
    def current(cls) -> _Watch | None:
        return cls._current.get()

    def arm(self, connection: HTTPConnection) -> None:
        if self._timer is None:
            delay = max(self._ends_at - time.monotonic(), 0.0)
            self._timer = threading.Timer(delay, self._cut, (connection,))
            self._timer.daemon = True
            self._timer.start()

    @property
    def ran_out(self) -> bool:
        """The request's time is up: the cut came, or a socket's own timeout (which starts later
        than the watch) noticed first, as it can when the machine is too busy to run the timer."""
        return self.expired or time.monotonic() >= self._ends_at

    def stop(self) -> bool:
        """Disarm (once is enough; later calls only report); True when the time ran out."""
        if self._timer is not None:
            self._timer.cancel()
        if self._reset is not None:
            _Watch._current.reset(self._reset)
            self._reset = None
        return self.expired

    def _cut(self, connection: HTTPConnection) -> None:
        sock = connection.sock
        if sock is None:
            return
        self.expired = True
        with contextlib.suppress(OSError):  # closed already
            # The plain socket's shutdown: on a TLS socket, SSLSocket.shutdown would also tear
            # down the TLS state another thread is reading through.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedConnectionMixin:
    """Hands the connection to the current request's watch before the answer is awaited."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        watch = _Watch.current()
        if watch is not None:
            watch.arm(self)  # type: ignore[arg-type]
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": _WatchedHTTPConnectionPool,
    "https": _WatchedHTTPSConnectionPool,
}
