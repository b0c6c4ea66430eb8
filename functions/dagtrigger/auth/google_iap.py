"""Composer 1 and any Airflow behind Identity-Aware Proxy: an OIDC ID token for the IAP client id.

The client id is IAP_CLIENT_ID, or read once from the `client_id` of the login redirect IAP
answers to an unauthenticated request, as Google documents for Composer 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dagtrigger.airflow.answers import Asked, classify
from dagtrigger.auth import CachedTokenAuth, Token
from dagtrigger.auth.google_common import (
    NO_CREDENTIALS_FIX,
    google_request,
    identity_of,
    refresh_credentials,
)
from dagtrigger.errors import ConfigurationError, ErrorKind
from dagtrigger.http import HttpSession


class IapIdTokenAuth(CachedTokenAuth):
    description = "the Google identity of the function (IAP ID token)"

    def __init__(
        self,
        base_url: str,
        session: HttpSession,
        client_id: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(clock)
        self._base_url = base_url
        self._session = session
        self.client_id = client_id
        self._credentials: Any = None

    def fetch_token(self) -> Token:
        if self.client_id is None:
            self.client_id = discover_iap_client_id(self._base_url, self._session)
        request = google_request(self._session)
        if self._credentials is None:
            from google.auth.exceptions import DefaultCredentialsError
            from google.oauth2 import id_token

            try:
                self._credentials = id_token.fetch_id_token_credentials(
                    self.client_id, request=request
                )
            except DefaultCredentialsError as exc:
                raise ConfigurationError(
                    f"No Google credentials that can mint an ID token: {exc}",
                    fix=f"{NO_CREDENTIALS_FIX} (user credentials from `gcloud auth "
                    "application-default login` cannot).",
                ) from exc
        token = refresh_credentials(
            self._credentials, request, f"an ID token for IAP client {self.client_id}"
        )
        self.description = identity_of(self._credentials) + " (IAP ID token)"
        return token

    def hint(self, status: int) -> str:
        who = self.description.removeprefix("Google identity ").removesuffix(" (IAP ID token)")
        if status == 401:
            return (
                f"IAP rejected the ID token: check IAP_CLIENT_ID is the OAuth client id of the "
                f"IAP in front of {self._base_url} (it is {self.client_id}), or unset it so "
                "dagtrigger reads it from the login redirect."
            )
        return (
            f"Give {who} access to the IAP-protected app (roles/iap.httpsResourceAccessor; on "
            "Composer 1, roles/composer.user on the project) and an Airflow role that may trigger "
            "runs (Op)."
        )


def discover_iap_client_id(base_url: str, session: HttpSession) -> str:
    """The `client_id` of the login redirect IAP answers to an unauthenticated request."""
    answer = classify(session.request("GET", base_url + "/"))
    if answer.retryable:
        raise answer.error_for(Asked(base_url, "GET / (looking for IAP's login redirect)"))
    client_ids = parse_qs(urlsplit(answer.location or "").query).get("client_id")
    if answer.kind is ErrorKind.REDIRECT and client_ids:
        return client_ids[0]
    raise ConfigurationError(
        f"{base_url} did not redirect an unauthenticated request to a Google login with a "
        f"client_id (it answered {answer.status}), so it is not behind IAP",
        fix="set IAP_CLIENT_ID if it is, or choose another AIRFLOW_AUTH.",
    )
