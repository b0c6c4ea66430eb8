"""A fault-injecting proxy in front of a real Airflow: what the clouds' networks and servers do.

Each request to the Airflow API meets, with the given probabilities, one of:
- `500` / `503`: an error answer; the request never reaches Airflow;
- `429`: throttled, half the time with `Retry-After`, half without;
- `reset_before`: the connection is reset before the request is sent on;
- `reset_after`: the request reaches Airflow (the run is created), then the connection is reset;
- `slow_after`: the request reaches Airflow, and the answer comes later than the client waits.
The two `_after` faults are the hard ones: the run exists, the client does not know it.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("500", "503", "429", "reset_before", "reset_after", "slow_after")


class ChaosProxy:
    def __init__(
        self,
        upstream_url: str,
        fault_rates: Mapping[str, float],
        *,
        seed: int = 7,
        slow_seconds: float = 1.5,
    ) -> None:
        unknown = set(fault_rates) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.upstream = urlsplit(upstream_url)
        self.fault_rates = dict(fault_rates)
        self.slow_seconds = slow_seconds
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self.api_requests = 0  # every request under /api/, each a draw for a fault
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ChaosProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def choose_fault(self, path: str) -> str | None:
        if not path.startswith("/api/"):
            return None
        with self._lock:
            self.api_requests += 1
            draw = self._random.random()
            for fault, rate in self.fault_rates.items():
                if draw < rate:
                    self.injected[fault] += 1
                    return fault
                draw -= rate
            return None

    def coin(self) -> bool:
        with self._lock:
            return self._random.random() < 0.5

    def forward(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            self.upstream.hostname or "", self.upstream.port, timeout=60
        )
        try:
            connection.request(method, path, body, dict(headers))
            answer = connection.getresponse()
            payload = answer.read()
            kept = [
                (k, v)
                for k, v in answer.getheaders()
                if k.lower() in ("content-type", "retry-after")
            ]
            with self._lock:
                self.forwarded += 1
            return answer.status, kept, payload
        finally:
            connection.close()


def _handler_for(proxy: ChaosProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._proxy()

        def do_POST(self) -> None:
            self._proxy()

        def do_PATCH(self) -> None:
            self._proxy()

        def _proxy(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() in ("authorization", "content-type", "accept", "cookie")
            }
            fault = proxy.choose_fault(self.path)
            if fault == "reset_before":
                return self._reset()
            if fault in ("500", "503"):
                return self._answer(
                    int(fault), [("Content-Type", "application/json")], b'{"detail": "injected"}'
                )
            if fault == "429":
                retry_after = [("Retry-After", "0.2")] if proxy.coin() else []
                return self._answer(
                    429,
                    [("Content-Type", "application/json"), *retry_after],
                    b'{"detail": "slow down"}',
                )
            status, kept, payload = proxy.forward(self.command, self.path, headers, body)
            if fault == "reset_after":
                return self._reset()
            if fault == "slow_after":
                time.sleep(proxy.slow_seconds)
            self._answer(status, kept, payload)

        def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                self.close_connection = True  # the client gave up waiting: nothing to answer

        def _reset(self) -> None:
            # SO_LINGER 0: close() sends RST, as a dropped connection or a crashed front does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

    return Handler
