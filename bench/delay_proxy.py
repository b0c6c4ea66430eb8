"""A loopback proxy that holds every request for a fixed delay, then sends it on: Airflow made
that much further away, as a network between a function and its Airflow would.

    with DelayProxy(airflow.url, 0.020) as proxy:
        ...  # proxy.url is the same Airflow, 20 ms further away

Clients keep their connection to the proxy alive; the proxy opens a new loopback connection to
the upstream for each request (`tests.standins._http.forward`), the same for every client. Only
the Authorization header is sent on, with the body's Content-Type and Accept.
"""

from __future__ import annotations

import time

from tests.standins._http import LoopbackServer, Request, Response, forward


class DelayProxy(LoopbackServer):
    def __init__(self, upstream_url: str, delay: float) -> None:
        super().__init__()
        self.upstream_url = upstream_url
        self.delay = delay

    def handle(self, request: Request) -> Response:
        time.sleep(self.delay)
        headers = {k: v for k, v in request.headers.items() if k == "authorization"}
        return forward(self.upstream_url, request, headers, timeout=60)
