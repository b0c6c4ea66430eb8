"""Cloud Composer 2 and 3: an OAuth access token from Application Default Credentials.

The web server accepts it as `Authorization: Bearer`; Composer maps the service account to an
Airflow user (role Op on first use by default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagtrigger.auth import CachedTokenAuth, Token
from dagtrigger.auth.google_common import (
    NO_CREDENTIALS_FIX,
    google_request,
    identity_of,
    refresh_credentials,
)
from dagtrigger.errors import ConfigurationError
from dagtrigger.http import HttpSession

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class GoogleAdcAuth(CachedTokenAuth):
    description = "the Google identity of the function"

    def __init__(self, session: HttpSession, clock: Callable[[], float] | None = None) -> None:
        super().__init__(clock)
        self._session = session
        self._credentials: Any = None
        self.project: str | None = None

    def fetch_token(self) -> Token:
        if self._credentials is None:
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError

            try:
                self._credentials, self.project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
            except DefaultCredentialsError as exc:
                raise ConfigurationError(
                    f"No Google Application Default Credentials: {exc}", fix=NO_CREDENTIALS_FIX
                ) from exc
        token = refresh_credentials(
            self._credentials, google_request(self._session), "an access token"
        )
        self.description = identity_of(self._credentials)
        return token

    def hint(self, status: int) -> str:
        who = self.description.removeprefix("Google identity ")
        return (
            f"Grant {who} roles/composer.user on the project (Composer's front refuses callers "
            "without composer.environments.get), and give its Airflow user a role that may "
            "trigger runs (Op, the default for new API users). If the service account's email "
            "is longer than 64 characters, Airflow cannot register it: pre-register the user "
            "accounts.google.com:NUMERIC_ID with role Op (NUMERIC_ID from `gcloud iam "
            "service-accounts describe SA@PROJECT.iam.gserviceaccount.com "
            "--format='value(oauth2ClientId)'`), e.g. `gcloud composer environments run ENV "
            "--project PROJECT --location REGION users create -- -u accounts.google.com:NUMERIC_ID "
            "-e SA@PROJECT.iam.gserviceaccount.com -f dagtrigger -l function -r Op "
            "--use-random-password`. "
            "On Composer 3, also check the web server's access control admits the function."
        )
