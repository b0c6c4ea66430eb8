"""Servers that misbehave on purpose, at the socket level, on loopback.

`HostileServer` reads each HTTP/1.1 request and answers it with a script: raw bytes, sent in
pieces, as slowly as the test likes, on a connection it may keep or drop. `ForwardProxy` is an
HTTP forward proxy (CONNECT tunnels and absolute-form requests) that records what went through
it and may ask for credentials.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True)
class Received:
    head: str
    body: bytes

    @property
    def request_line(self) -> str:
        return self.head.split("\r\n", 1)[0]

    def header(self, name: str) -> str | None:
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


# What a script does with one request: write to the peer; return False to close the connection.
Script = Callable[[Received, socket.socket], bool]


def read_request(peer: socket.socket) -> Received | None:
    """One request off the connection, or None when the client closed it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = peer.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    received = Received(head.decode("latin-1"), b"")
    length = int(received.header("Content-Length") or 0)
    while len(body) < length:
        chunk = peer.recv(65536)
        if not chunk:
            return None
        body += chunk
    return Received(received.head, body)


class _LoopbackListener:
    """Accepts connections on 127.0.0.1 and serves each in a thread until stopped."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self._peers: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it
        self._listener.close()
        with self._lock:
            peers, self._peers = self._peers, []
        for peer in peers:
            with contextlib.suppress(OSError):
                peer.shutdown(socket.SHUT_RDWR)
            peer.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve(self, peer: socket.socket) -> None:
        raise NotImplementedError

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                peer, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._peers.append(peer)
            threading.Thread(target=self._serve_and_close, args=(peer,), daemon=True).start()

    def _serve_and_close(self, peer: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the client went away, or the test stopped the server
            self.serve(peer)
            # A graceful close: unread bytes left behind would make the kernel send a reset.
            peer.shutdown(socket.SHUT_WR)
            peer.settimeout(1.0)
            while peer.recv(65536):
                pass
        peer.close()


class HostileServer(_LoopbackListener):
    """Answers the n-th request (over all connections) with scripts[n], the last one after that."""

    def __init__(self, scripts: Sequence[Script]) -> None:
        super().__init__()
        self.scripts = list(scripts)
        self.requests: list[Received] = []

    def serve(self, peer: socket.socket) -> None:
        while not self._stopped.is_set():
            request = read_request(peer)
            if request is None:
                return
            with self._lock:
                self.requests.append(request)
                script = self.scripts[min(len(self.requests), len(self.scripts)) - 1]
            if not script(request, peer):
                return


def answer(
    status: int, body: bytes = b"{}", headers: Sequence[tuple[str, str]] = (), keep: bool = True
) -> Script:
    """A well-formed answer with a Content-Length; `keep=False` closes the connection after it
    without saying so (as uvicorn does after some errors)."""
    lines = [
        f"HTTP/1.1 {status} X",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers),
    ]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def script(request: Received, peer: socket.socket) -> bool:
        peer.sendall(raw)
        return keep

    return script


def trickle(raw: bytes, every: float, piece: int = 1) -> Script:
    """Sends `raw` `piece` bytes at a time, one piece every `every` seconds."""

    def script(request: Received, peer: socket.socket) -> bool:
        for start in range(0, len(raw), piece):
            peer.sendall(raw[start : start + piece])
            time.sleep(every)
        return True

    return script


def endless_continue(every: float, for_seconds: float) -> Script:
    """`100 Continue` answers, one every `every` seconds, for `for_seconds`, then a 200."""

    def script(request: Received, peer: socket.socket) -> bool:
        ends = time.monotonic() + for_seconds
        while time.monotonic() < ends:
            peer.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            time.sleep(every)
        return answer(200)(request, peer)

    return script


class ForwardProxy(_LoopbackListener):
    """An HTTP forward proxy on loopback: CONNECT tunnels and absolute-form requests.

    `seen` lists each request line it was asked to carry. With `credentials`, a request without
    the matching Proxy-Authorization is answered 407.
    """

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.seen: list[str] = []
        self._expected = None
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            self._expected = f"Basic {token}"

    def serve(self, peer: socket.socket) -> None:
        request = read_request(peer)
        if request is None:
            return
        method, target, _ = request.request_line.split(" ", 2)
        with self._lock:
            self.seen.append(f"{method} {target}")
        if self._expected is not None and request.header("Proxy-Authorization") != self._expected:
            peer.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="proxy"\r\nContent-Length: 0\r\n'
                b"Connection: close\r\n\r\n"
            )
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                peer.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _relay(peer, upstream)
            return
        self._forward(request, method, target, peer)

    def _forward(self, request: Received, method: str, target: str, peer: socket.socket) -> None:
        """An absolute-form request, sent on to the origin; the answer relayed until it closes."""
        rest = target.split("://", 1)[1]
        authority, _, path = rest.partition("/")
        host, _, port = authority.rpartition(":")
        kept = [
            line
            for line in request.head.split("\r\n")[1:]
            if line.split(":", 1)[0].strip().lower()
            not in ("proxy-authorization", "connection", "proxy-connection")
        ]
        head = "\r\n".join([f"{method} /{path} HTTP/1.1", *kept, "Connection: close"])
        with socket.create_connection((host, int(port or 80)), timeout=10) as upstream:
            upstream.sendall(head.encode("latin-1") + b"\r\n\r\n" + request.body)
            answer = b""
            while chunk := upstream.recv(65536):
                answer += chunk
        # One request per connection, said in the answer, so the client never reuses it.
        status_line, _, rest = answer.partition(b"\r\n")
        peer.sendall(status_line + b"\r\nConnection: close\r\n" + rest)


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copies bytes both ways until either side closes."""

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=pump, args=(b, a), daemon=True)
    other.start()
    pump(a, b)
    other.join(timeout=30)
