"""Airflow 3: a JWT from `POST /auth/token`, cached until it nears its `exp` claim."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from dagtrigger.airflow.answers import REFUSALS, Asked, classify
from dagtrigger.auth import CachedTokenAuth, Token
from dagtrigger.errors import AuthenticationError, ErrorKind
from dagtrigger.http import HttpSession
from dagtrigger.redact import remember_secret


class AirflowJwtAuth(CachedTokenAuth):
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        session: HttpSession,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(clock)
        remember_secret(password)
        self._base_url = base_url
        self._token_url = f"{base_url}/auth/token"
        self._credentials = {"username": username, "password": password}
        self._session = session
        self._username = username
        self.description = f"Airflow user {username!r} (JWT from /auth/token)"

    def fetch_token(self) -> Token:
        answer = classify(
            self._session.request("POST", self._token_url, json_body=self._credentials)
        )
        if answer.kind in REFUSALS:
            # What the token endpoint refuses is the credential itself, whatever the status.
            raise answer.error(
                f"Airflow refused to issue a token for user {self._username!r} "
                f"({answer.status} {answer.detail})",
                "check AIRFLOW_USERNAME and AIRFLOW_PASSWORD.",
                kind=ErrorKind.AUTHENTICATION,
            )
        if answer.kind is ErrorKind.NOT_FOUND:
            raise answer.error(
                f"{self._token_url} does not exist (404)",
                "this server is not Airflow 3 with the default auth manager; use "
                "AIRFLOW_AUTH=basic for Airflow 2, or the auth path of your platform.",
                kind=ErrorKind.AUTHENTICATION,
            )
        if answer.kind is ErrorKind.REDIRECT or answer.retryable:
            raise answer.error_for(Asked(f"Airflow at {self._base_url}", "POST /auth/token"))
        payload = answer.response.json()
        if answer.kind is not None or not isinstance(payload, dict):
            raise answer.error(
                f"Unexpected answer from {self._token_url}: {answer.status} {answer.detail}",
                kind=ErrorKind.AUTHENTICATION,
            )
        access_token = payload.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise AuthenticationError(f"{self._token_url} answered without an access_token")
        return Token(access_token, jwt_expiry(access_token))

    def hint(self, status: int) -> str:
        return (
            f"Check that Airflow user {self._username!r} has a role that may trigger DAG runs "
            "(with the simple auth manager: [core] simple_auth_manager_users role 'op' or 'admin'; "
            "with FAB: Op or User)."
        )


def jwt_expiry(jwt: str) -> float | None:
    """The `exp` claim, read without verifying: only the issuer needs to trust the token.

    None ("no usable expiry") unless `exp` is a time after 1970 and before the year 10000: a
    400-digit number would overflow a float, and NaN, infinity, zero or a negative number name
    no time. A token without a usable expiry is kept until Airflow refuses it.
    """
    latest_expiry = 253402300799  # 9999-12-31T23:59:59Z
    try:
        payload_part = jwt.split(".")[1]
        padded = payload_part + "=" * (-len(payload_part) % 4)
        claims: Any = json.loads(base64.urlsafe_b64decode(padded))
    except (IndexError, ValueError, RecursionError):  # RecursionError: a deeply nested payload
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    # int and float compare exactly in Python, so a huge int cannot overflow here; NaN fails
    return float(exp) if 0 < exp <= latest_expiry else None
