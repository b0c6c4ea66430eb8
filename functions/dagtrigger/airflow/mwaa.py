"""Amazon MWAA: Airflow's REST API through `invoke_rest_api`, authorised by IAM alone.

MWAA maps `Path` onto /api/v1 (Airflow 2) or /api/v2 (Airflow 3) and wraps Airflow's own errors
in RestApiClientException / RestApiServerException, whose RestApiStatusCode is Airflow's status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from dagtrigger.airflow.api import ApiVersion
from dagtrigger.auth import Auth
from dagtrigger.aws import boto_error_code
from dagtrigger.errors import (
    AuthorizationError,
    ConfigurationError,
    PermanentTriggerError,
    TransientTriggerError,
)
from dagtrigger.http import Response

MAX_PATH_LENGTH = 64  # InvokeRestApi's own limit on Path
_API_PREFIX = re.compile(r"^/api/(v1|v2)(?=/)")
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "InternalServerException",
        "ServiceUnavailable",
        "RequestTimeout",
    }
)
_THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException"})
DEFAULT_RATE_LIMIT = 10.0  # requests/s: about what invoke_rest_api admits per environment
MIN_BOTOCORE = "1.35.47"


class MwaaIamAuth:
    """The function's IAM role, as MWAA sees it; there is no credential of dagtrigger's own."""

    description = "the function's IAM role"

    def __init__(
        self, environment: str, region: str, account: str, airflow_role: str = "Op"
    ) -> None:
        self.role_arn = f"arn:aws:airflow:{region}:{account}:role/{environment}/{airflow_role}"

    def headers(self) -> Mapping[str, str]:
        return {}

    def refresh(self) -> bool:
        return False

    def hint(self, status: int) -> str:
        return (
            "Allow the function's role airflow:InvokeRestApi on the Airflow role it acts as: "
            + json.dumps(
                {"Effect": "Allow", "Action": "airflow:InvokeRestApi", "Resource": self.role_arn}
            )
            + " (MWAA_AIRFLOW_ROLE names the Airflow role: one that may trigger runs, such as Op)."
        )


class MwaaTransport:
    """Delivers REST calls with `invoke_rest_api`; Airflow's answers come back as Responses."""

    max_path_length: int | None = MAX_PATH_LENGTH

    def __init__(self, environment: str, client: Any, auth: MwaaIamAuth) -> None:
        if not hasattr(client, "invoke_rest_api"):
            import botocore

            raise ConfigurationError(
                f"botocore {botocore.__version__} has no MWAA invoke_rest_api (it needs "
                f"{MIN_BOTOCORE} or newer): package a newer boto3 with the function, or set "
                "AIRFLOW_AUTH=mwaa-web."
            )
        from botocore.exceptions import BotoCoreError, ClientError

        self.environment = environment
        self.description = f"MWAA environment {environment} (invoke_rest_api)"
        self.auth: Auth = auth
        self._client = client
        self._errors = (ClientError, BotoCoreError)

    def request(self, method: str, path: str, *, json_body: Any = None) -> Response:
        api_path, _, query = _API_PREFIX.sub("", path, count=1).partition("?")
        if len(api_path) > MAX_PATH_LENGTH:
            raise PathTooLongError(
                f"MWAA's invoke_rest_api takes paths of at most {MAX_PATH_LENGTH} characters and "
                f"{method} {api_path} has {len(api_path)}: use a DAG id short enough for "
                "/dags/<dag id>/dagRuns to fit (49 characters), or set AIRFLOW_AUTH=mwaa-web."
            )
        arguments: dict[str, Any] = {"Name": self.environment, "Path": api_path, "Method": method}
        if query:
            arguments["QueryParameters"] = dict(parse_qsl(query, keep_blank_values=True))
        if json_body is not None:
            arguments["Body"] = json_body
        client_error, botocore_error = self._errors
        try:
            answer = self._client.invoke_rest_api(**arguments)
        except client_error as exc:
            return self._airflow_error(exc)
        except botocore_error as exc:  # endpoint unreachable, timeouts, dropped connections
            raise TransientTriggerError(f"{self.description}: {exc}") from exc
        return _response(answer.get("RestApiStatusCode", 200), answer.get("RestApiResponse"))

    def _airflow_error(self, exc: Any) -> Response:
        code = boto_error_code(exc)
        details = exc.response
        if code in ("RestApiClientException", "RestApiServerException"):
            return _response(details.get("RestApiStatusCode", 500), details.get("RestApiResponse"))
        message = details.get("Error", {}).get("Message", str(exc))
        if code in _TRANSIENT_CODES:
            status = 429 if code in _THROTTLING_CODES else None
            raise TransientTriggerError(
                f"{self.description}: {code}: {message}", status=status
            ) from exc
        if code == "AccessDeniedException":
            raise AuthorizationError(
                f"{self.description} refused the call ({message}). {self.auth.hint(403)}"
            ) from exc
        if code == "ResourceNotFoundException":
            raise ConfigurationError(
                f"MWAA_ENVIRONMENT={self.environment} was not found ({message}): check the name and "
                "the function's region (aws mwaa list-environments)."
            ) from exc
        raise PermanentTriggerError(f"{self.description}: {code}: {message}") from exc


class PathTooLongError(PermanentTriggerError):
    """A REST path longer than invoke_rest_api accepts."""


def read_environment(environment: str, client: Any) -> Mapping[str, Any]:
    """GetEnvironment's `Environment`: AirflowVersion, WebserverUrl, Arn, ..."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return dict(client.get_environment(Name=environment)["Environment"])
    except ClientError as exc:
        code = boto_error_code(exc)
        if code in _TRANSIENT_CODES:
            raise TransientTriggerError(f"MWAA GetEnvironment {environment}: {code}") from exc
        if code == "ResourceNotFoundException":
            raise ConfigurationError(
                f"MWAA_ENVIRONMENT={environment} was not found: check the name and the function's "
                "region (aws mwaa list-environments)."
            ) from exc
        raise AuthorizationError(
            f"MWAA GetEnvironment {environment} was refused ({code}): allow the function's role "
            f"airflow:GetEnvironment on arn:aws:airflow:REGION:ACCOUNT:environment/{environment}."
        ) from exc
    except BotoCoreError as exc:
        raise TransientTriggerError(f"MWAA GetEnvironment {environment}: {exc}") from exc


def api_version_of(environment: Mapping[str, Any]) -> ApiVersion:
    version = str(environment.get("AirflowVersion", ""))
    return ApiVersion.V2 if version.split(".")[0] == "3" else ApiVersion.V1


def _response(status: Any, payload: Any) -> Response:
    body = b"" if payload is None else json.dumps(payload).encode()
    return Response(int(status), body, {"Content-Type": "application/json"})
