"""One kept-alive HTTP/1.1 client connection: a request written in one piece, its answer parsed.

The trigger path's only network work is a small JSON POST and its small JSON answer, on a
connection kept open across events. http.client spends far more CPU than that exchange needs
(per-header calls, a new buffered file and an email parser per answer), so this does the
client side of RFC 9112 that such exchanges use, and no more: Content-Length, chunked and
close-delimited bodies, 1xx answers skipped, `Connection: close` and HTTP/1.0 honoured.
Anything it cannot frame safely is a ProtocolError, and the connection is not reused.
"""

from __future__ import annotations

import functools
import re
import select
import socket
import ssl
from typing import NamedTuple

MAX_HEAD_BYTES = 64 * 1024  # status line and headers of one answer
MAX_BODY_BYTES = 32 * 1024 * 1024  # Airflow's answers to these calls are a few KB
_RECEIVE = 64 * 1024
_NOT_SENDABLE = re.compile(r"[\x00-\x1f\x7f]")  # no control characters in a target or header
_NO_BODY_STATUSES = frozenset({204, 304})


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x this client can read."""


class RemoteDisconnected(ConnectionError):
    """The server closed the connection without answering."""


class Connection:
    """Not thread-safe: a pool hands each connection to one request at a time."""

    def __init__(
        self,
        host: str,
        port: int,
        host_header: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host_header = host_header
        self._address = (host, port)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._tls = tls
        self._sock: socket.socket | None = None
        self._poller: select.poll | None = None

    def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> Answer:
        """Send one request and read its answer.

        Raises OSError for connection trouble, ProtocolError for an unreadable answer (the
        connection must be closed after either), and ValueError for a request that must not be
        sent (nothing was sent).
        """
        message = _request_head(method, target, self.host_header, tuple(headers.items()))
        if body is not None or method in ("POST", "PUT", "PATCH"):
            message += b"Content-Length: %d\r\n" % len(body or b"")
        message += b"\r\n" + (body or b"")
        sock = self._sock if self._sock is not None else self._connect()
        sock.sendall(message)
        return _read_response(sock, method)

    def closed_by_peer(self) -> bool:
        """An idle connection with something to read has been closed (or broken) by the server."""
        if self._poller is None:
            return False
        return bool(self._poller.poll(0))

    def close(self) -> None:
        sock, self._sock, self._poller = self._sock, None, None
        if sock is not None:
            sock.close()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        try:
            # Small requests go out at once rather than waiting on the previous segment's ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._address[0])
            sock.settimeout(self._read_timeout)
        except BaseException:
            sock.close()
            raise
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        self._sock, self._poller = sock, poller
        return sock


class Answer(NamedTuple):
    status: int
    fields: dict[str, str]  # by lower-case name; a repeated field keeps its last value
    set_cookies: tuple[str, ...]  # every Set-Cookie field: they cannot be folded into one
    body: bytes
    reusable: bool  # the connection may carry another request


# The same few heads go out for every event (same method, path and credentials), so each is
# checked and encoded once: the cache holds the latest ones, a renewed token brings a new one.
@functools.lru_cache(maxsize=32)
def _request_head(
    method: str, target: str, host_header: str, fields: tuple[tuple[str, str], ...]
) -> bytes:
    """The request line and header fields, each line ending in CRLF (the blank line not yet)."""
    if " " in target or _NOT_SENDABLE.search("".join([target, *(n + v for n, v in fields)])):
        # A CR or LF would let a value smuggle in headers of its own (request splitting).
        raise ValueError(f"refusing to send a control character or space in {method} {target!r}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
    lines += [f"{name}: {value}" for name, value in fields]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def _read_response(sock: socket.socket, method: str) -> Answer:
    buffer = b""
    while True:
        head, buffer = _read_head(sock, buffer)
        version, status, fields, cookies = _parse_head(head)
        if 100 <= status < 200:  # informational (100 Continue, 103 Early Hints): the answer follows
            continue
        break
    connection = fields.get("connection")
    tokens = {t.strip().lower() for t in connection.split(",")} if connection else set()
    reusable = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
    if method == "HEAD" or status in _NO_BODY_STATUSES:
        body = b""
    elif "transfer-encoding" in fields:
        if fields["transfer-encoding"].lower().rsplit(",", 1)[-1].strip() != "chunked":
            raise ProtocolError(f"unsupported Transfer-Encoding {fields['transfer-encoding']!r}")
        body, buffer = _read_chunked(sock, buffer)
    elif "content-length" in fields:
        length_text = fields["content-length"].strip()
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            raise ProtocolError(f"unusable Content-Length {fields['content-length']!r}")
        body, buffer = _read_exactly(sock, buffer, int(length_text))
    else:  # the body runs to the end of the connection
        body, buffer, reusable = _read_to_close(sock, buffer), b"", False
    if buffer:  # bytes nobody asked for: the framing cannot be trusted for the next answer
        reusable = False
    return Answer(status, fields, tuple(cookies), body, reusable)


def _receive(sock: socket.socket, buffer: bytes, limit: int, what: str) -> bytes:
    if len(buffer) > limit:
        raise ProtocolError(f"{what} is over {limit} bytes")
    chunk = sock.recv(_RECEIVE)
    if not chunk:
        if not buffer and what == "the answer's head":
            raise RemoteDisconnected("the server closed the connection without answering")
        raise ProtocolError(f"the server closed the connection in the middle of {what}")
    return buffer + chunk


def _read_head(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        buffer = _receive(sock, buffer, MAX_HEAD_BYTES, "the answer's head")
    return buffer[:end], buffer[end + 4 :]


def _parse_head(head: bytes) -> tuple[str, int, dict[str, str], list[str]]:
    """Version, status, fields by lower-case name, and the Set-Cookie values in order."""
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:100]!r}")
    fields: dict[str, str] = {}
    cookies: list[str] = []
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ProtocolError(f"malformed header line {line[:100]!r}")
        name, value = name.lower(), value.strip()
        if name == "set-cookie":
            cookies.append(value)
        fields[name] = value
    return version, int(code), fields, cookies


def _read_exactly(sock: socket.socket, buffer: bytes, length: int) -> tuple[bytes, bytes]:
    while len(buffer) < length:
        buffer = _receive(sock, buffer, MAX_BODY_BYTES, "the answer's body")
    return buffer[:length], buffer[length:]


def _read_chunked(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
    parts: list[bytes] = []
    total = 0
    while True:
        while (end := buffer.find(b"\r\n")) < 0:
            buffer = _receive(sock, buffer, MAX_HEAD_BYTES, "a chunk's size line")
        size_text = buffer[:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"malformed chunk size {size_text[:40]!r}") from None
        buffer = buffer[end + 2 :]
        if size == 0:
            # Trailer fields, if any, end with an empty line; they carry nothing needed here.
            while not buffer.startswith(b"\r\n") and (end := buffer.find(b"\r\n\r\n")) < 0:
                buffer = _receive(sock, buffer, MAX_HEAD_BYTES, "the trailer")
            buffer = buffer[2:] if buffer.startswith(b"\r\n") else buffer[end + 4 :]
            return b"".join(parts), buffer
        total += size
        if total > MAX_BODY_BYTES:
            raise ProtocolError(f"the answer's body is over {MAX_BODY_BYTES} bytes")
        chunk, buffer = _read_exactly(sock, buffer, size + 2)
        if not chunk.endswith(b"\r\n"):
            raise ProtocolError("a chunk does not end with CRLF")
        parts.append(chunk[:-2])


def _read_to_close(sock: socket.socket, buffer: bytes) -> bytes:
    while True:
        if len(buffer) > MAX_BODY_BYTES:
            raise ProtocolError(f"the answer's body is over {MAX_BODY_BYTES} bytes")
        chunk = sock.recv(_RECEIVE)
        if not chunk:
            return buffer
        buffer += chunk
