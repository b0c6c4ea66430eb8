"""The versions of Airflow's REST API dagtrigger speaks, and where each lives on the server."""

from __future__ import annotations

from enum import StrEnum


class ApiVersion(StrEnum):
    """A REST API version, as AIRFLOW_API_VERSION names it; compares equal to that text."""

    EXPERIMENTAL = "experimental"  # Airflow 1.10
    V1 = "v1"  # Airflow 2
    V2 = "v2"  # Airflow 3

    @property
    def prefix(self) -> str:
        """The path every call of this version starts with."""
        return f"/api/{self.value}"

    @property
    def probe(self) -> str:
        """A path that answers without logging in when, and only when, the version exists."""
        return (
            "/api/experimental/test"
            if self is ApiVersion.EXPERIMENTAL
            else f"{self.prefix}/version"
        )


NEWEST_FIRST = (ApiVersion.V2, ApiVersion.V1, ApiVersion.EXPERIMENTAL)
