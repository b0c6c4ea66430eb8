"""The servers a benchmark talks to, each in a process of its own so that its CPU time never
counts against the client being timed.

    python -m bench.serve stub                      # Airflow as fast as a server can be
    python -m bench.serve google UPSTREAM KEY_FILE  # Google token endpoint + Composer front
    python -m bench.serve mwaa UPSTREAM LATENCY     # the MWAA stand-in (InvokeRestApi)

Each prints one JSON line (its URLs, and `stats_url`: GET it for the request counts) and serves
until its standard input closes. `ServerProcess` starts one from the benchmark.

The stub answers every request with a canned 200 and an Airflow-like DAG run body, so a client's
own cost shows, and a repeated run id is never a 409: duplicate detection plays no part.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Self

REPO = Path(__file__).resolve().parent.parent
MWAA_ENVIRONMENT = "dagtrigger-bench"
MWAA_AIRFLOW_VERSION = "3.0.6"

# What Airflow 3 answers to a created run, trimmed to its usual size.
CANNED_BODY = json.dumps(
    {
        "dag_run_id": "bench",
        "dag_id": "dagtrigger_example",
        "logical_date": None,
        "queued_at": "2024-06-01T06:15:02.437000Z",
        "start_date": None,
        "end_date": None,
        "data_interval_start": None,
        "data_interval_end": None,
        "run_after": "2024-06-01T06:15:02.437000Z",
        "last_scheduling_decision": None,
        "run_type": "manual",
        "state": "queued",
        "triggered_by": "rest_api",
        "conf": {},
        "note": None,
    }
).encode()
CANNED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(CANNED_BODY)).encode()
    + b"\r\n\r\n"
    + CANNED_BODY
)


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, int] = {}

    def add(self, name: str) -> None:
        with self.lock:
            self.values[name] = self.values.get(name, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.values)


class _StubProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length bodies, pipelining: just enough for real clients."""

    def __init__(self, counts: _Counts) -> None:
        self._counts = counts
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            del self._buffer[: end + 4 + length]
            self._counts.add(head.split(b" ", 1)[0].decode("ascii", "replace"))
            assert self._transport is not None
            self._transport.write(CANNED_RESPONSE)


def _stats_server(stats: Any) -> Any:
    from tests.standins._http import LoopbackServer, Request, Response, json_response

    class Stats(LoopbackServer):
        def handle(self, request: Request) -> Response:
            return json_response(200, stats())

    return Stats().start()


def _serve_stub() -> None:
    counts = _Counts()
    stats = _stats_server(
        lambda: {"requests": sum(counts.snapshot().values()), **counts.snapshot()}
    )
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: _StubProtocol(counts), "127.0.0.1", 0, backlog=256)
    )
    port = server.sockets[0].getsockname()[1]
    _announce({"url": f"http://127.0.0.1:{port}", "stats_url": stats.url})
    threading.Thread(target=_wait_for_eof, args=(lambda: loop.call_soon_threadsafe(loop.stop),),
                     daemon=True).start()  # fmt: skip
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
        stats.stop()


def _serve_google(upstream: str, key_file: str) -> None:
    from tests.standins.google import ComposerFront, GoogleTokenServer

    tokens = GoogleTokenServer().start()
    front = ComposerFront(upstream, tokens, dict).start()
    Path(key_file).write_text(json.dumps(tokens.service_account_key()))
    stats = _stats_server(
        lambda: {
            "access_tokens_issued": tokens.access_tokens_issued,
            "front_requests": len(front.requests_seen),
        }
    )
    _announce({"token_uri": tokens.token_uri, "front_url": front.url, "stats_url": stats.url})
    try:
        _wait_for_eof(lambda: None)
    finally:
        for server in (stats, front, tokens):
            server.stop()


def _serve_mwaa(upstream: str, latency: str) -> None:
    from tests.standins.mwaa import MwaaEnvironment, MwaaStandin

    environment = MwaaEnvironment(MWAA_ENVIRONMENT, upstream, MWAA_AIRFLOW_VERSION, dict)
    mwaa = MwaaStandin({MWAA_ENVIRONMENT: environment}, extra_latency=float(latency)).start()
    stats = _stats_server(
        lambda: {
            "invoke_rest_api": len(mwaa.invocations),
            "get_environment": mwaa.get_environment_calls,
        }
    )
    _announce(
        {"url": mwaa.url, "client_env": mwaa.client_env(), "stats_url": stats.url,
         "environment": MWAA_ENVIRONMENT}
    )  # fmt: skip
    try:
        _wait_for_eof(lambda: None)
    finally:
        stats.stop()
        mwaa.stop()


def _announce(info: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()


def _wait_for_eof(then: Any) -> None:
    sys.stdin.read()
    then()


class ServerProcess:
    """`python -m bench.serve KIND ARGS...` as a context manager; `info` is what it announced."""

    def __init__(self, kind: str, *args: str, log: Path | None = None) -> None:
        self.command = [sys.executable, "-m", "bench.serve", kind, *args]
        self.log = log
        self.info: dict[str, Any] = {}
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        log = open(self.log, "a") if self.log else subprocess.DEVNULL
        self._process = subprocess.Popen(
            self.command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            text=True, env=child_env(),
        )  # fmt: skip
        if log is not subprocess.DEVNULL:
            log.close()
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self.__exit__()
            raise RuntimeError(f"{' '.join(self.command[2:])} did not start; see {self.log}")
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stats(self) -> dict[str, int]:
        return fetch_stats(self.info["stats_url"])


def fetch_stats(stats_url: str) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(stats_url, timeout=10) as response:  # noqa: S310 (loopback)
        return dict(json.load(response))


def child_env(**extra: str) -> dict[str, str]:
    """A clean environment for the benchmark's own processes: no cloud settings leak in."""
    import os

    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DAGTRIGGER_CACHE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONPATH"] = os.pathsep.join((str(REPO), str(REPO / "functions")))
    env.update(extra)
    return env


def main(argv: list[str]) -> None:
    kinds = {"stub": _serve_stub, "google": _serve_google, "mwaa": _serve_mwaa}
    kinds[argv[0]](*argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
