"""The plumbing every stand-in shares: a ThreadingHTTPServer on 127.0.0.1, port 0, in a thread.

A stand-in subclasses `LoopbackServer` and implements `handle(request) -> Response`, or raises
`ResetConnection` to drop the connection unanswered; it is a context manager and also has
start()/stop(). stop() shuts the server down, closes the connections clients keep alive (so no
handler thread outlives it) and joins every thread.

`forward` sends a request on to an upstream URL on loopback, as a proxy in front of Airflow does.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

# What a proxy passes back to its caller from the upstream answer, besides the body.
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "Retry-After", "Location")


@dataclass(frozen=True)
class Request:
    """One request as the stand-in received it."""

    method: str
    target: str  # exactly as on the request line: path and query
    path: str  # without the query, not decoded
    query: dict[str, str]  # the first value of each parameter
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def bearer(self) -> str | None:
        """The token of an `Authorization: Bearer` header, else None."""
        scheme, _, token = (self.header("Authorization") or "").partition(" ")
        return (token.strip() or None) if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status,
        json.dumps(payload).encode(),
        {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
    )


def text_response(
    status: int, text: str, content_type: str = "text/plain", headers: dict[str, str] | None = None
) -> Response:
    return Response(
        status, text.encode(), {"Content-Type": f"{content_type}; charset=UTF-8", **(headers or {})}
    )


class ResetConnection(Exception):
    """Raised by `handle` to drop the connection with a TCP RST instead of answering."""


class LoopbackServer:
    """Base of the stand-ins: serves `handle` on 127.0.0.1 at a free port while started."""

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, without a trailing slash."""
        return f"http://{self.host}"

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = self._bind(_handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # stop() waits up to one poll, and tests stop a server each: keep it short.
            kwargs={"poll_interval": 0.02},
            name=f"{type(self).__name__}-{self.host}",
            daemon=True,
        )
        self._thread.start()
        return self

    def _bind(self, handler: type[BaseHTTPRequestHandler]) -> _Server:
        """The server listening on a free loopback port; a subclass may wrap its socket."""
        return _Server(("127.0.0.1", 0), handler)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()  # joins the handler threads
        thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def forward(
    upstream_url: str, request: Request, headers: dict[str, str], timeout: float = 30
) -> Response:
    """Send `request` to `upstream_url` (same method, path, query, body) with `headers`."""
    upstream = urlsplit(upstream_url)
    base_path = upstream.path.rstrip("/")
    sent = {"Content-Length": str(len(request.body)), **headers}
    for name in ("Content-Type", "Accept"):
        value = request.header(name)
        if value is not None:
            sent[name] = value
    connection = http.client.HTTPConnection(upstream.hostname or "", upstream.port, timeout=timeout)
    try:
        connection.request(request.method, base_path + request.target, request.body, sent)
        answer = connection.getresponse()
        body = answer.read()
        kept = {
            name: value
            for name in FORWARDED_RESPONSE_HEADERS
            if (value := answer.getheader(name)) is not None
        }
        return Response(answer.status, body, kept)
    except OSError as exc:
        # What Google's front answers when the web server behind it does not.
        return text_response(502, f"Error: Server Error. The server could not reach {exc}\n")
    finally:
        connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # and block_on_close stays True: server_close() joins them

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, is_open: bool) -> None:
        with self._connections_lock:
            if is_open:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_open_connections(self) -> None:
        """End kept-alive connections, so the threads reading from them return."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _handler_for(standin: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's pools expect
        timeout = 30  # an idle kept-alive connection does not hold a thread for ever
        server: _Server

        def setup(self) -> None:
            super().setup()
            # Headers and body go out as separate writes: without this, Nagle's algorithm and
            # delayed ACKs add ~40 ms to every answer on a kept-alive connection.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.server.track(self.connection, is_open=True)

        def finish(self) -> None:
            self.server.track(self.connection, is_open=False)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            request = Request(
                method=self.command,
                target=self.path,
                path=split.path,
                query=dict(reversed(parse_qsl(split.query, keep_blank_values=True))),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            try:
                response = standin.handle(request)
            except ResetConnection:
                self._reset()
                return
            except Exception as exc:  # a bug in a stand-in shows up as a 500 naming it
                response = text_response(500, f"{type(standin).__name__} failed: {exc!r}\n")
            try:
                self._send(response)
            except OSError:
                self.close_connection = True  # the client gave up waiting: nobody to answer

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout makes close() send RST: the peer sees
            # "connection reset by peer", with no answer and no waiting for a timeout.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

    return Handler
