"""COMPOSER_ENVIRONMENT: the web server URL and Airflow version, read once from the Composer API."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dagtrigger.airflow.answers import REFUSALS, Asked, classify
from dagtrigger.airflow.api import ApiVersion
from dagtrigger.auth import Auth
from dagtrigger.errors import ConfigurationError, ErrorKind
from dagtrigger.http import HttpSession

COMPOSER_API = "https://composer.googleapis.com"
_IMAGE_VERSION = re.compile(r"^composer-(\d+)(?:\.[0-9.]+)?-airflow-(\d+)(?:[.-]|$)")


@dataclass(frozen=True)
class ComposerEnvironment:
    name: str
    airflow_uri: str
    image_version: str  # e.g. composer-3-airflow-2.10.5-build.3

    @property
    def composer_major(self) -> int:
        return int(self._version().group(1))

    @property
    def airflow_major(self) -> int:
        return int(self._version().group(2))

    @property
    def api_version(self) -> ApiVersion:
        return {1: ApiVersion.EXPERIMENTAL, 2: ApiVersion.V1}.get(self.airflow_major, ApiVersion.V2)

    @property
    def auth(self) -> str:
        """Composer 1 web servers sit behind IAP; Composer 2 and 3 take Google access tokens."""
        return "iap" if self.composer_major == 1 else "google"

    def _version(self) -> re.Match[str]:
        match = _IMAGE_VERSION.match(self.image_version)
        if match is None:
            raise ConfigurationError(
                f"Composer environment {self.name} has an image version dagtrigger does not "
                f"recognise ({self.image_version!r})",
                fix="set AIRFLOW_URL, AIRFLOW_AUTH and AIRFLOW_API_VERSION instead of "
                "COMPOSER_ENVIRONMENT.",
            )
        return match


def describe_environment(
    name: str, session: HttpSession, auth: Auth, endpoint: str = COMPOSER_API
) -> ComposerEnvironment:
    """GET the environment from the Composer API (`composer.environments.get`)."""
    response = session.request("GET", f"{endpoint}/v1/{name}", headers=auth.headers())
    answer = classify(response)
    if answer.kind in REFUSALS and auth.refresh():
        answer = classify(session.request("GET", f"{endpoint}/v1/{name}", headers=auth.headers()))
    if answer.kind in REFUSALS:
        project = name.split("/")[1]
        # Whichever the refusal, what the identity lacks is the grant.
        raise answer.error(
            f"The Composer API refused {auth.description} access to {name} ({answer.status}: "
            f"{answer.detail})",
            f"grant it roles/composer.user on project {project}.",
            kind=ErrorKind.AUTHORIZATION,
        )
    if answer.kind is ErrorKind.NOT_FOUND:
        parts = name.split("/")  # projects/P/locations/L/environments/E
        raise answer.error(
            f"COMPOSER_ENVIRONMENT={name} does not exist ({answer.detail})",
            "check the project, location and name (`gcloud composer environments list "
            f"--project {parts[1]} --locations {parts[3]}`).",
            kind=ErrorKind.CONFIGURATION,
        )
    if answer.kind is ErrorKind.REDIRECT or answer.retryable:
        raise answer.error_for(Asked("The Composer API", f"describe environment {name}"))
    body = answer.response.json()
    config = body.get("config") if isinstance(body, dict) else None
    uri = config.get("airflowUri") if isinstance(config, dict) else None
    software = config.get("softwareConfig") if isinstance(config, dict) else None
    image = software.get("imageVersion") if isinstance(software, dict) else None
    if answer.status != 200 or not isinstance(uri, str) or not isinstance(image, str):
        raise ConfigurationError(
            f"The Composer API answered {answer.status} for {name} without config.airflowUri "
            "and config.softwareConfig.imageVersion",
            fix="is the environment still being created? Otherwise set AIRFLOW_URL instead.",
            status=answer.status,
        )
    return ComposerEnvironment(name, uri.rstrip("/"), image)
