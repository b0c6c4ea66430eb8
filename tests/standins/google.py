"""Stand-ins for Google: token endpoint and metadata server, Composer's and IAP's fronts, and
Composer's environments API. See `google_tokens` and `google_fronts` for what each answers,
`google_jwt` for the JWT and key helpers.

    with GoogleTokenServer() as tokens, ComposerFront(airflow.url, tokens, admin_headers) as front:
        key = tokens.service_account_key()
        ...  # google-auth with `key` gets a token from `tokens`; `front.url` is Airflow behind it
"""

from __future__ import annotations

from tests.standins.google_fronts import (
    COMPOSER_GET,
    INSUFFICIENT_SCOPES,
    INVALID_CREDENTIALS,
    MISSING_CREDENTIALS,
    ComposerEnvironmentsApi,
    ComposerFront,
    IapFront,
    composer_environment,
)
from tests.standins.google_jwt import new_rsa_key, parse_jwt, sign_jwt
from tests.standins.google_tokens import (
    CLOUD_PLATFORM,
    DEFAULT_ACCOUNT,
    GoogleTokenServer,
    Identity,
    ServiceAccount,
)

__all__ = [
    "CLOUD_PLATFORM",
    "COMPOSER_GET",
    "DEFAULT_ACCOUNT",
    "INSUFFICIENT_SCOPES",
    "INVALID_CREDENTIALS",
    "MISSING_CREDENTIALS",
    "ComposerEnvironmentsApi",
    "ComposerFront",
    "GoogleTokenServer",
    "IapFront",
    "Identity",
    "ServiceAccount",
    "composer_environment",
    "new_rsa_key",
    "parse_jwt",
    "sign_jwt",
]
