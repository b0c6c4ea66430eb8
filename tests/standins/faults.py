"""A front for a real Airflow that fails chosen requests the way a struggling server does."""

from __future__ import annotations

from tests.standins._http import LoopbackServer, Request, Response, forward, json_response


class FlakyFront(LoopbackServer):
    """Forwards to `upstream_url`, but answers 503 to every request whose path contains one of
    `failing` (e.g. one DAG's id), so a test can make exactly one run fail transiently."""

    def __init__(self, upstream_url: str, failing: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.upstream_url = upstream_url
        self.failing = failing
        self.failed = 0

    def handle(self, request: Request) -> Response:
        if any(part in request.path for part in self.failing):
            self.failed += 1
            return json_response(503, {"detail": "Service Unavailable"}, {"Retry-After": "0"})
        headers = {k: v for k, v in request.headers.items() if k in ("authorization", "cookie")}
        return forward(self.upstream_url, request, headers)
