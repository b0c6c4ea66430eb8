"""Servers that answer with the request they got: what a debug page, a proxy or FastAPI does.

An echo shows the request's credentials back to the caller, and dagtrigger quotes answers in its
messages. The three answers an `Echoes` gives, each with `Set-Cookie` repeating the request's
cookies (what a session middleware that re-issues cookies does):

- "500-text": a plain-text 500 holding the raw request: its request line, its headers one per
  line, sorted by name as debug pages list them, a blank line, the body;
- "500-html": an HTML 500 page with the request line, the headers as a Python dict and the body,
  HTML-escaped (a framework's debug page);
- "422-json": FastAPI's validation error, `{"detail": [{"type": "missing", "loc": [...], "msg":
  "Field required", "input": <the body as JSON>}]}`: Airflow 3's own answer to a body it
  refuses, which for `POST /auth/token` quotes the password.

`EchoFront` is a front for a real server that echoes the requests whose path matches a rule
and forwards the others; `MwaaStandin` and `MwaaWebFront` take an `Echoes` too.
"""

from __future__ import annotations

import html
import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from tests.standins._http import LoopbackServer, Request, Response, forward

STYLES = ("500-text", "500-html", "422-json")


@dataclass(frozen=True)
class EchoRule:
    path: str  # a regular expression searched for in the request's path
    style: str  # one of STYLES


class Echoes:
    """Which requests are echoed and how; remembers every request it echoed."""

    def __init__(self, *rules: EchoRule) -> None:
        for rule in rules:
            assert rule.style in STYLES, rule
        self.rules = list(rules)
        self._echoed: list[Request] = []
        self._lock = threading.Lock()

    @property
    def echoed(self) -> list[Request]:
        with self._lock:
            return list(self._echoed)

    def document(self, request: Request, path: str | None = None) -> tuple[int, Any] | None:
        """The status and body (text, or a JSON value) echoing `request`, if a rule matches
        `path` (the request's own by default); None otherwise."""
        style = next((r.style for r in self.rules if re.search(r.path, path or request.path)), None)
        if style is None:
            return None
        with self._lock:
            self._echoed.append(request)
        return echo_document(request, style)

    def answer(self, request: Request) -> Response | None:
        """The HTTP answer echoing `request`, if a rule matches its path; None otherwise."""
        document = self.document(request)
        if document is None:
            return None
        status, body = document
        headers = {"Content-Type": "application/json"}
        if isinstance(body, str):
            kind = "text/html" if body.startswith("<") else "text/plain"
            headers["Content-Type"] = f"{kind}; charset=UTF-8"
        cookies = request.header("Cookie")
        if cookies:
            headers["Set-Cookie"] = f"{cookies}; Path=/"
        encoded = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return Response(status, encoded, headers)


def echo_document(request: Request, style: str) -> tuple[int, Any]:
    text = request.body.decode("utf-8", "replace")
    headers = dict(sorted(request.headers.items()))
    if style == "422-json":
        try:
            given: Any = json.loads(text) if text else {}
        except ValueError:
            given = text
        missing = {"type": "missing", "loc": ["body", "dag_run_id"], "msg": "Field required"}
        return 422, {"detail": [{**missing, "input": given}]}
    request_line = f"{request.method} {request.target} HTTP/1.1"
    if style == "500-html":
        shown = f"{request_line}\n{headers!r}\n\n{text}"
        return 500, f"<html><h1>500 Internal Server Error</h1><pre>{html.escape(shown)}</pre>"
    lines = [request_line, *(f"{name}: {value}" for name, value in headers.items()), "", text]
    return 500, "\n".join(lines)


class EchoFront(LoopbackServer):
    """Forwards to `upstream_url` with the caller's Authorization and Cookie, but echoes the
    requests `echoes` names instead."""

    def __init__(self, upstream_url: str, echoes: Echoes) -> None:
        super().__init__()
        self.upstream_url = upstream_url
        self.echoes = echoes

    def handle(self, request: Request) -> Response:
        echoed = self.echoes.answer(request)
        if echoed is not None:
            return echoed
        headers = {k: v for k, v in request.headers.items() if k in ("authorization", "cookie")}
        return forward(self.upstream_url, request, headers)
