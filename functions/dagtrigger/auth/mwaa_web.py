"""Amazon MWAA web login: a session from `create_web_login_token`, for rates invoke_rest_api refuses.

Airflow 2 environments answer `POST /aws_mwaa/login` with a `session` cookie; Airflow 3 ones
answer `POST /pluginsv2/aws_mwaa/login` with a `_token` cookie holding a JWT, sent as a bearer
token. The web token lives 60 s and is used at once; the session is renewed when it expires or
is rejected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from dagtrigger.airflow.answers import Asked, classify
from dagtrigger.auth import CachedTokenAuth, Token
from dagtrigger.auth.airflow_jwt import jwt_expiry
from dagtrigger.aws import boto_error_code
from dagtrigger.errors import AuthorizationError, ErrorKind, TransientTriggerError
from dagtrigger.http import HttpSession
from dagtrigger.redact import remember_secret

_LOGIN = {"v1": ("/aws_mwaa/login", "session"), "v2": ("/pluginsv2/aws_mwaa/login", "_token")}


class MwaaWebLoginAuth(CachedTokenAuth):
    def __init__(
        self,
        environment: str,
        client: Any,
        session: HttpSession,
        api_version: str,
        role_arn: str,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(clock)
        self._environment = environment
        self._client = client
        self._session = session
        self._login_path, self._cookie = _LOGIN[api_version]
        self._role_arn = role_arn
        self.description = f"the function's IAM role (MWAA web login to {environment})"

    def headers(self) -> Mapping[str, str]:
        value = self._current().value
        if self._cookie == "session":
            return {"Cookie": f"session={value}"}
        return {"Authorization": f"Bearer {value}"}

    def fetch_token(self) -> Token:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            login = self._client.create_web_login_token(Name=self._environment)
        except ClientError as exc:
            if boto_error_code(exc) == "AccessDeniedException":
                raise AuthorizationError(
                    f"MWAA refused a web login token ({exc})", fix=self.hint(403)
                ) from exc
            raise TransientTriggerError(f"MWAA CreateWebLoginToken failed: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientTriggerError(
                f"MWAA CreateWebLoginToken failed: {exc}", kind=ErrorKind.UNREACHABLE
            ) from exc
        remember_secret(login["WebToken"])  # single-use, but an echo of the login would show it
        host = f"https://{login['WebServerHostname']}"
        form = {"token": login["WebToken"]}
        answer = classify(self._session.request("POST", host + self._login_path, form=form))
        if answer.retryable:
            raise answer.error_for(Asked(f"MWAA web login at {host}", f"POST {self._login_path}"))
        value = _cookie(answer.response.set_cookies, self._cookie)
        if value is None:
            raise answer.error(
                f"MWAA web login at {host}{self._login_path} answered {answer.status} without a "
                f"{self._cookie} cookie",
                "check the web server is reachable from the function (a private web server "
                "needs the function in the environment's VPC).",
                kind=ErrorKind.AUTHENTICATION,
            )
        expires_at = jwt_expiry(value) if self._cookie == "_token" else None
        return Token(value, expires_at)

    def hint(self, status: int) -> str:
        return (
            "Allow the function's role airflow:CreateWebLoginToken on the Airflow role it acts as: "
            + json.dumps(
                {
                    "Effect": "Allow",
                    "Action": "airflow:CreateWebLoginToken",
                    "Resource": self._role_arn,
                }
            )
        )


def _cookie(set_cookies: tuple[str, ...], name: str) -> str | None:
    for header in set_cookies:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            continue
        if name in jar and jar[name].value:
            return jar[name].value
    return None
