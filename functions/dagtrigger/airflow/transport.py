"""How requests reach Airflow's REST API: directly over HTTP with an Auth, or through a cloud API.

The client speaks in API paths (`/api/v2/dags/...`); a transport delivers them. Cloud paths that
do not talk HTTP to the web server (MWAA's invoke_rest_api) implement the same protocol.
"""

from __future__ import annotations

from typing import Any, Protocol

from dagtrigger.airflow.answers import REFUSALS, Asked, classify
from dagtrigger.auth import Auth
from dagtrigger.errors import ErrorKind, TransientTriggerError
from dagtrigger.http import HttpSession, Response


class Transport(Protocol):
    """Delivers one REST call to Airflow, authenticated; raises TransientTriggerError on I/O."""

    @property
    def description(self) -> str:
        """Where the calls go, for messages."""
        ...

    @property
    def auth(self) -> Auth: ...

    @property
    def max_path_length(self) -> int | None:
        """A limit on the API path (MWAA's invoke_rest_api), if any."""
        ...

    def request(self, method: str, path: str, *, json_body: Any = None) -> Response: ...


class HttpTransport:
    """Calls the web server directly; renews the credential once when it is rejected."""

    max_path_length: int | None = None

    def __init__(
        self, base_url: str, auth: Auth, session: HttpSession, unreachable_hint: str = ""
    ) -> None:
        self.base_url = base_url
        self.description = base_url
        self.auth = auth
        self._session = session
        self._unreachable_hint = unreachable_hint  # what to check when no connection can be made

    def request(self, method: str, path: str, *, json_body: Any = None) -> Response:
        answer = classify(self._send(method, self.base_url + path, json_body))
        # Airflow 3 answers 403 "Invalid JWT token" to an expired token, so 403 earns one renewal too.
        if answer.kind in REFUSALS and self.auth.refresh():
            answer = classify(self._send(method, self.base_url + path, json_body))
        if answer.kind is ErrorKind.REDIRECT:
            raise answer.error_for(Asked(f"Airflow at {self.base_url}", f"{method} {path}"))
        return answer.response

    def _send(self, method: str, url: str, json_body: Any) -> Response:
        try:
            return self._session.request(
                method, url, json_body=json_body, headers=self.auth.headers()
            )
        except TransientTriggerError as exc:
            if not self._unreachable_hint:
                raise
            raise TransientTriggerError(
                str(exc),
                fix=self._unreachable_hint,
                kind=exc.kind,
                status=exc.status,
                retry_after=exc.retry_after,
            ) from exc
