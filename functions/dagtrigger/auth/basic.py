"""HTTP basic auth: Airflow 2 with `[api] auth_backends` including basic_auth, and Airflow 1.10."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from dagtrigger.redact import remember_secret


class BasicAuth:
    def __init__(self, username: str, password: str) -> None:
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        remember_secret(password)
        remember_secret(credentials)  # what the header carries, and so what an echo shows
        self._header = {"Authorization": f"Basic {credentials}"}
        self.description = f"basic auth as Airflow user {username!r}"
        self._username = username

    def headers(self) -> Mapping[str, str]:
        return self._header

    def refresh(self) -> bool:
        return False

    def hint(self, status: int) -> str:
        return (
            f"Check AIRFLOW_USERNAME/AIRFLOW_PASSWORD (Airflow 2 answers 403 to a wrong password too), "
            f"that [api] auth_backends includes airflow.api.auth.backend.basic_auth, and that user "
            f"{self._username!r} has a role that may trigger runs (Op, or User with can_create on "
            "DAG Runs and can_edit on the DAG)."
        )
