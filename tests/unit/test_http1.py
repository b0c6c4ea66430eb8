"""The HTTP/1.1 connection against a scripted server: every framing an answer may use."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from dagtrigger.errors import ConfigurationError, TransientTriggerError
from dagtrigger.http import HttpSession
from dagtrigger.http1 import Connection, ProtocolError, RemoteDisconnected


class ScriptedServer:
    """Answers the n-th request on a connection with the n-th script: byte pieces sent apart."""

    def __init__(self, scripts: list[list[bytes]], close_after: bool = False) -> None:
        self.scripts = scripts
        self.close_after = close_after
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._answered = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with self._listener:
            peer, _ = self._listener.accept()
            with peer:
                for script in self.scripts:
                    self.requests.append(_read_request(peer))
                    for piece in script:
                        peer.sendall(piece)
                        time.sleep(0.01)  # the client sees the answer arrive in parts
                self._answered.set()
                if self.close_after:
                    return
                peer.settimeout(5)
                with contextlib.suppress(OSError):
                    peer.recv(1)  # hold the connection open until the client closes it

    def join(self) -> None:
        """Wait until every script has been sent."""
        assert self._answered.wait(timeout=5)


def _read_request(peer: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += peer.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        body += peer.recv(4096)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def connect() -> Iterator:
    opened: list[Connection] = []

    def make(server: ScriptedServer) -> Connection:
        connection = Connection(
            "127.0.0.1", server.port, f"127.0.0.1:{server.port}", connect_timeout=2, read_timeout=2
        )
        opened.append(connection)
        return connection

    yield make
    for connection in opened:
        connection.close()


def test_the_request_is_one_well_formed_message(connect) -> None:
    server = ScriptedServer([[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"]])
    answer = connect(server).request(
        "POST", "/api/v2/x", {"Content-Type": "application/json"}, b'{"a":1}'
    )
    server.join()

    assert answer == (200, {"content-length": "2"}, (), b"{}", True)
    assert server.requests == [
        b"POST /api/v2/x HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b'Content-Length: 7\r\n\r\n{"a":1}' % server.port
    ]


def test_fields_by_lower_case_name_and_every_set_cookie_in_order(connect) -> None:
    server = ScriptedServer(
        [[b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Thing:  v \r\nset-cookie: b=2\r\n"
          b"Content-Length: 0\r\n\r\n"]]
    )  # fmt: skip
    answer = connect(server).request("GET", "/", {}, None)
    server.join()

    assert answer.set_cookies == ("a=1", "b=2")
    assert answer.fields == {"set-cookie": "b=2", "x-thing": "v", "content-length": "0"}


def test_each_request_carries_its_own_header_values(connect) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    server = ScriptedServer([[ok], [ok], [ok]])
    connection = connect(server)
    for token in ("one", "two", "one"):
        connection.request("POST", "/runs", {"Authorization": f"Bearer {token}"}, b"{}")
    server.join()

    sent = [r.split(b"Authorization: ", 1)[1].split(b"\r\n", 1)[0] for r in server.requests]
    assert sent == [b"Bearer one", b"Bearer two", b"Bearer one"]


def test_a_body_split_across_reads_and_a_second_answer_on_the_same_connection(connect) -> None:
    server = ScriptedServer(
        [
            [b"HTTP/1.1 201 Created\r\nContent-Le", b"ngth: 11\r\n\r\nhello", b" world"],
            [b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"],
        ]
    )
    connection = connect(server)
    first = connection.request("POST", "/a", {}, b"x")
    second = connection.request("GET", "/b", {}, None)
    server.join()

    assert (first.status, first.body) == (201, b"hello world")
    assert (second.status, second.body) == (200, b"")
    assert server.requests[1].startswith(b"GET /b HTTP/1.1\r\n")
    assert b"Content-Length" not in server.requests[1]


def test_chunked_with_extensions_and_trailers(connect) -> None:
    server = ScriptedServer(
        [[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5;name=value\r\nhello\r\n", b"6\r\n world\r\n0\r\n",
            b"Checksum: abc\r\n\r\n",
        ], [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"]]
    )  # fmt: skip
    connection = connect(server)
    first = connection.request("GET", "/", {}, None)
    second = connection.request("GET", "/", {}, None)
    server.join()

    assert (first.body, first.reusable) == (b"hello world", True)
    assert (second.body, second.reusable) == (b"", True)


def test_informational_answers_are_skipped(connect) -> None:
    server = ScriptedServer(
        [[b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]]
    )
    answer = connect(server).request("POST", "/", {}, b"x")
    server.join()

    assert (answer.status, answer.body) == (200, b"ok")


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}TRAILING-GARBAGE",
    ],
    ids=["connection-close", "http-1.0", "bytes-beyond-the-body"],
)
def test_answers_after_which_the_connection_is_not_reused(connect, head: bytes) -> None:
    server = ScriptedServer([[head + (b"{}" if head.endswith(b"\r\n\r\n") else b"")]])
    status, _, _, body, reusable = connect(server).request("GET", "/", {}, None)
    server.join()

    assert (status, body, reusable) == (200, b"{}", False)


def test_a_body_delimited_by_closing_the_connection(connect) -> None:
    server = ScriptedServer([[b"HTTP/1.1 200 OK\r\n\r\npart one, ", b"part two"]], close_after=True)
    status, _, _, body, reusable = connect(server).request("GET", "/", {}, None)
    server.join()

    assert (status, body, reusable) == (200, b"part one, part two", False)


def test_no_body_after_204(connect) -> None:
    server = ScriptedServer(
        [[b"HTTP/1.1 204 No Content\r\n\r\n"], [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1"]]
    )
    connection = connect(server)
    first = connection.request("DELETE", "/", {}, None)
    second = connection.request("GET", "/", {}, None)
    server.join()

    assert (first.status, first.body, first.reusable) == (204, b"", True)
    assert second.body == b"1"


@pytest.mark.parametrize(
    ("script", "error", "message"),
    [
        ([b"SSH-2.0-OpenSSH\r\n\r\n"], ProtocolError, "not an HTTP/1.x status line"),
        ([b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"], ProtocolError, "malformed header line"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"], ProtocolError, "unusable Content-Length"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"], ProtocolError, "unsupported Transfer-Encoding"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], ProtocolError, "malformed chunk size"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"], ProtocolError, "in the middle of the answer's body"),
        ([], RemoteDisconnected, "closed the connection without answering"),
    ],
    ids=["not-http", "bad-header", "negative-length", "unknown-coding", "bad-chunk", "cut-short", "no-answer"],
)  # fmt: skip
def test_unreadable_answers_are_errors(
    connect, script: list[bytes], error: type, message: str
) -> None:
    server = ScriptedServer([script], close_after=True)
    with pytest.raises(error, match=message):
        connect(server).request("GET", "/", {}, None)
    server.join()


def test_a_head_that_never_ends_is_cut_off(connect) -> None:
    server = ScriptedServer(
        [[b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * 70_000]], close_after=True
    )
    with pytest.raises(ProtocolError, match="the answer's head is over 65536 bytes"):
        connect(server).request("GET", "/", {}, None)
    server.join()


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/x", {"Authorization": "Bearer abc\r\nX-Injected: 1"}),
        ("/x\r\nX-Injected: 1", {}),
        ("/x y", {}),
    ],
    ids=["header-value", "target-crlf", "target-space"],
)
def test_request_splitting_is_refused_before_anything_is_sent(
    target: str, headers: dict[str, str]
) -> None:
    connection = Connection("127.0.0.1", 9, "127.0.0.1:9", connect_timeout=1, read_timeout=1)
    with pytest.raises(ValueError, match="refusing to send a control character or space"):
        connection.request("GET", target, headers, None)


def test_the_session_turns_protocol_and_header_errors_into_classified_ones() -> None:
    server = ScriptedServer([[b"garbage\r\n\r\n"]], close_after=True)
    session = HttpSession(timeout=2.0)
    with pytest.raises(
        TransientTriggerError,
        match=r"GET http://127\.0\.0\.1:\d+/x failed: ProtocolError: not an HTTP",
    ):
        session.request("GET", f"http://127.0.0.1:{server.port}/x")
    server.join()
    with pytest.raises(ConfigurationError, match="refusing to send a control character"):
        session.request("GET", "http://127.0.0.1:9/x", headers={"Authorization": "a\nb"})
