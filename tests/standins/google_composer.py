"""Google in front of one Airflow, as a Cloud Function on Composer finds it: the token server,
Composer's and IAP's fronts, Composer's environments API, and a service account key.

The `google` fixture (tests/integration/conftest.py) starts them around the session's Airflow and
lists three environments in the API: `ENVIRONMENT` (Composer 2 or 3, behind Composer's front),
`COMPOSER1_ENVIRONMENT` (Composer 1, behind IAP) and `UNREACHABLE_ENVIRONMENT` (a web server on a
port nothing listens on). Only `SERVICE_ACCOUNT` is allowed through the fronts and the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.standins.google_fronts import ComposerEnvironmentsApi, ComposerFront, IapFront
from tests.standins.google_tokens import GoogleTokenServer

_LOCATION = "projects/acme-data/locations/europe-west1/environments"
ENVIRONMENT = f"{_LOCATION}/prod"
COMPOSER1_ENVIRONMENT = f"{_LOCATION}/legacy"
UNREACHABLE_ENVIRONMENT = f"{_LOCATION}/unreachable"
SERVICE_ACCOUNT = "dagtrigger@acme-data.iam.gserviceaccount.com"
IAP_CLIENT_ID = "123456789012-iapclient.apps.googleusercontent.com"
# Composer's image version names the Airflow in it; by the major version of the Airflow behind.
COMPOSER_IMAGES = {"2": "composer-2.9.7-airflow-2.9.3", "3": "composer-3-airflow-3.1.0-build.1"}
COMPOSER1_IMAGES = {"2": "composer-1.20.12-airflow-2.4.3", "3": "composer-1.20.12-airflow-3.0.0"}


@dataclass
class Google:
    tokens: GoogleTokenServer
    composer: ComposerFront
    iap: IapFront
    environments: ComposerEnvironmentsApi
    key: dict[str, str]  # the service account key of SERVICE_ACCOUNT
    key_file: Path
    sdk_config: Path  # an empty gcloud configuration: google-auth finds no user credentials

    def env(self, **overrides: str) -> dict[str, str]:
        """The function's environment on `ENVIRONMENT`, with `overrides`: an empty one leaves it out."""
        env = {
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file),
            "CLOUDSDK_CONFIG": str(self.sdk_config),
            "COMPOSER_ENVIRONMENT": ENVIRONMENT,
            "COMPOSER_API_ENDPOINT": self.environments.url,
            "DAG_ID": "dagtrigger_example",
            "DAGTRIGGER_DEADLINE": "3",
        }
        env.update(overrides)
        return {name: value for name, value in env.items() if value}
