"""A fault-injecting proxy in front of a real Airflow: what the clouds' networks and servers do.

Each request to the Airflow API meets, with the given probabilities, one of:
- `500` / `503`: an error answer; the request never reaches Airflow;
- `429`: throttled, half the time with `Retry-After`, half without;
- `reset_before`: the connection is reset before the request is sent on;
- `reset_after`: the request reaches Airflow (the run is created), then the connection is reset;
- `slow_after`: the request reaches Airflow, and the answer comes later than the client waits.
The two `_after` faults are the hard ones: the run exists, the client does not know it.

In front of an AWS JSON service (MWAA Serverless: every call is `POST /`), `faulted="/"` draws a
fault for every request and `keep_all_headers=True` passes the request on as signed (Host
included, so that the SigV4 signature still holds); the error answers carry no AWS error code,
as a load balancer's would not.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Mapping

from tests.standins._http import (
    LoopbackServer,
    Request,
    ResetConnection,
    Response,
    forward,
    json_response,
)

FAULTS = ("500", "503", "429", "reset_before", "reset_after", "slow_after")


class ChaosProxy(LoopbackServer):
    def __init__(
        self,
        upstream_url: str,
        fault_rates: Mapping[str, float],
        *,
        seed: int = 7,
        slow_seconds: float = 1.5,
        faulted: str = "/api/",
        keep_all_headers: bool = False,
    ) -> None:
        unknown = set(fault_rates) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        super().__init__()
        self.upstream_url = upstream_url
        self.fault_rates = dict(fault_rates)
        self.slow_seconds = slow_seconds
        self.faulted = faulted
        self.keep_all_headers = keep_all_headers
        self.injected: Counter[str] = Counter()
        self.api_requests = 0  # every request under /api/, each a draw for a fault
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        fault = self.choose_fault(request.path)
        if fault == "reset_before":
            raise ResetConnection
        if fault in ("500", "503"):
            return json_response(int(fault), {"detail": "injected"})
        if fault == "429":
            retry_after = {"Retry-After": "0.2"} if self.coin() else {}
            return json_response(429, {"detail": "slow down"}, retry_after)
        kept = None if self.keep_all_headers else ("authorization", "cookie")
        headers = {
            k: v
            for k, v in request.headers.items()
            if (k in kept if kept is not None else k != "content-length")
        }
        answer = forward(self.upstream_url, request, headers, timeout=60)
        if fault == "reset_after":
            raise ResetConnection
        if fault == "slow_after":
            time.sleep(self.slow_seconds)
        return answer

    def choose_fault(self, path: str) -> str | None:
        if not path.startswith(self.faulted):
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
