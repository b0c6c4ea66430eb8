"""A static bearer token given in AIRFLOW_TOKEN (issued and rotated by something else)."""

from __future__ import annotations

from collections.abc import Mapping

from dagtrigger.redact import remember_secret


class StaticBearerAuth:
    description = "the bearer token in AIRFLOW_TOKEN"

    def __init__(self, token: str) -> None:
        remember_secret(token)
        self._header = {"Authorization": f"Bearer {token}"}

    def headers(self) -> Mapping[str, str]:
        return self._header

    def refresh(self) -> bool:
        return False

    def hint(self, status: int) -> str:
        return (
            "AIRFLOW_TOKEN was rejected or lacks permission: issue a fresh token (Airflow 3: "
            "POST /auth/token; it expires after [api_auth] jwt_expiration_time) or set "
            "AIRFLOW_USERNAME/AIRFLOW_PASSWORD so dagtrigger renews it itself."
        )
