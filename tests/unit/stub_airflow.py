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
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from urllib3 import HTTPHeaderDict

from tests.standins._http import (
    LoopbackServer,
    Request,
    ResetConnection,
    Response,
    json_response,
)


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
    headers: Mapping[str, str]  # names match in any case, as in HTTP
    body: bytes
    at: float  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


class StubAirflow(LoopbackServer):
    """Answers each request with the next reply scripted for its method and path."""

    def __init__(self) -> None:
        super().__init__()
        self._queues: dict[tuple[str, str], deque[Reply]] = {}
        self._fallbacks: dict[tuple[str, str], Reply] = {}
        self._received: list[Received] = []
        self._lock = threading.Lock()

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

    def handle(self, request: Request) -> Response:
        reply = self._next_reply(
            Received(
                method=request.method,
                path=unquote(request.path),
                raw_path=request.target,
                headers=HTTPHeaderDict(request.headers),
                body=request.body,
                at=time.monotonic(),
            )
        )
        if reply.reset:
            raise ResetConnection
        if reply.body is None:
            return Response(reply.status, b"", reply.headers)
        if isinstance(reply.body, bytes):
            return Response(reply.status, reply.body, reply.headers)
        return json_response(reply.status, reply.body, reply.headers)

    def _next_reply(self, request: Received) -> Reply:
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
