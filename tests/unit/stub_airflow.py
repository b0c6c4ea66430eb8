"""A scriptable stand-in for Airflow's web server: a real HTTP server on 127.0.0.1, port 0.

Tests queue the replies for a (method, path) pair, run the code under test against `stub.url`,
then read `stub.received(...)` to see exactly what reached the wire. Paths are matched after
percent-decoding, as Airflow's own routers do; the raw path is recorded too.

    with StubAirflow() as stub:
        stub.reply("POST", "/api/v2/dags/d/dagRuns", Reply(503), Reply(200, {"state": "queued"}))
        ...
        assert len(stub.received("POST", "/api/v2/dags/d/dagRuns")) == 2

Replies queued for a pair are used once each, in order; `always` sets the reply used once the
queue is empty. A pair with neither answers 404 {"detail": "Not Found"}, like FastAPI.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `reset` drops the connection (TCP RST) instead of answering."""

    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False


RESET = Reply(reset=True)


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str  # percent-decoded, without the query
    raw_path: str  # exactly as sent on the request line
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


class StubAirflow:
    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], deque[Reply]] = {}
        self._fallbacks: dict[tuple[str, str], Reply] = {}
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        """Queue replies for `method path`, each used once, in order."""
        with self._lock:
            self._queues.setdefault((method, path), deque()).extend(replies)

    def always(self, method: str, path: str, reply: Reply) -> None:
        """The reply for `method path` whenever its queue is empty."""
        with self._lock:
            self._fallbacks[(method, path)] = reply

    def received(self, method: str | None = None, path: str | None = None) -> list[Received]:
        """The requests received so far, optionally only those for `method` and/or `path`."""
        with self._lock:
            return [
                r
                for r in self._received
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    def start(self) -> StubAirflow:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StubAirflow:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _answer(self, request: Received) -> Reply:
        key = (request.method, request.path)
        with self._lock:
            self._received.append(request)
            queue = self._queues.get(key)
            if queue:
                return queue.popleft()
            return self._fallbacks.get(key, Reply(404, {"detail": "Not Found"}))


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _handler_for(stub: StubAirflow) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
        timeout = 10  # a connection left idle by a finished test does not hold a thread forever

        def setup(self) -> None:
            super().setup()
            # Headers and body go out as separate writes: without this, Nagle's algorithm and
            # delayed ACKs add ~40 ms to every answer on a kept-alive connection.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            raw_path = self.path
            request = Received(
                method=self.command,
                path=unquote(urlsplit(raw_path).path),
                raw_path=raw_path,
                headers=dict(self.headers.items()),
                body=body,
                at=time.monotonic(),
            )
            reply = stub._answer(request)
            if reply.reset:
                self._reset()
                return
            if isinstance(reply.body, bytes):
                payload = reply.body
            elif reply.body is None:
                payload = b""
            else:
                payload = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            if reply.body is not None and not isinstance(reply.body, bytes):
                self.send_header("Content-Type", "application/json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout makes close() send RST: the peer sees
            # "connection reset by peer", with no response and no waiting for a timeout.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

    return Handler
