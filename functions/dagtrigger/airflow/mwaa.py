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

from dagtrigger.airflow.answers import error_of
from dagtrigger.airflow.api import ApiVersion
from dagtrigger.auth import Auth
from dagtrigger.aws import boto_error_code
from dagtrigger.errors import (
    AuthorizationError,
    ConfigurationError,
    ErrorKind,
    PermanentTriggerError,
    TransientTriggerError,
)
from dagtrigger.http import Response

MAX_PATH_LENGTH = 64  # InvokeRestApi's own limit on Path
_API_PREFIX = re.compile(
    "^(?:" + "|".join(re.escape(v.prefix) for v in (ApiVersion.V1, ApiVersion.V2)) + ")(?=/)"
)
# MWAA's own failures, by error code, as the kinds of problem an HTTP status would report.
_KIND_OF_CODE = {
    "ThrottlingException": ErrorKind.THROTTLED,
    "TooManyRequestsException": ErrorKind.THROTTLED,
    "InternalServerException": ErrorKind.SERVER_ERROR,
    "ServiceUnavailable": ErrorKind.SERVER_ERROR,
    "RequestTimeout": ErrorKind.TIMEOUT,
    "AccessDeniedException": ErrorKind.AUTHORIZATION,
    "ResourceNotFoundException": ErrorKind.NOT_FOUND,
}
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
                f"{MIN_BOTOCORE} or newer)",
                fix="package a newer boto3 with the function, or set AIRFLOW_AUTH=mwaa-web.",
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
                f"{method} {api_path} has {len(api_path)}",
                fix="use a DAG id short enough for /dags/<dag id>/dagRuns to fit (49 characters), "
                "or set AIRFLOW_AUTH=mwaa-web.",
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
            raise TransientTriggerError(
                f"{self.description}: {exc}", kind=ErrorKind.UNREACHABLE
            ) from exc
        return _response(answer.get("RestApiStatusCode", 200), answer.get("RestApiResponse"))

    def _airflow_error(self, exc: Any) -> Response:
        code = boto_error_code(exc)
        details = exc.response
        if code in ("RestApiClientException", "RestApiServerException"):
            return _response(details.get("RestApiStatusCode", 500), details.get("RestApiResponse"))
        message = details.get("Error", {}).get("Message", str(exc))
        kind = _KIND_OF_CODE.get(code, ErrorKind.REFUSED)
        if kind is ErrorKind.AUTHORIZATION:
            raise AuthorizationError(
                f"{self.description} refused the call ({message})", fix=self.auth.hint(403)
            ) from exc
        if kind is ErrorKind.NOT_FOUND:
            raise ConfigurationError(
                f"MWAA_ENVIRONMENT={self.environment} was not found ({message})",
                fix="check the name and the function's region (aws mwaa list-environments).",
            ) from exc
        raise error_of(
            kind, f"{self.description}: {code}: {message}", status=_http_status(exc)
        ) from exc


class PathTooLongError(PermanentTriggerError):
    """A REST path longer than invoke_rest_api accepts."""


def read_environment(environment: str, client: Any) -> Mapping[str, Any]:
    """GetEnvironment's `Environment`: AirflowVersion, WebserverUrl, Arn, ..."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return dict(client.get_environment(Name=environment)["Environment"])
    except ClientError as exc:
        code = boto_error_code(exc)
        kind = _KIND_OF_CODE.get(code, ErrorKind.AUTHORIZATION)
        if kind is ErrorKind.NOT_FOUND:
            raise ConfigurationError(
                f"MWAA_ENVIRONMENT={environment} was not found",
                fix="check the name and the function's region (aws mwaa list-environments).",
            ) from exc
        if kind is ErrorKind.AUTHORIZATION:
            raise AuthorizationError(
                f"MWAA GetEnvironment {environment} was refused ({code})",
                fix="allow the function's role airflow:GetEnvironment on "
                f"arn:aws:airflow:REGION:ACCOUNT:environment/{environment}.",
            ) from exc
        raise error_of(
            kind, f"MWAA GetEnvironment {environment}: {code}", status=_http_status(exc)
        ) from exc
    except BotoCoreError as exc:
        raise TransientTriggerError(
            f"MWAA GetEnvironment {environment}: {exc}", kind=ErrorKind.UNREACHABLE
        ) from exc


def api_version_of(environment: Mapping[str, Any]) -> ApiVersion:
    version = str(environment.get("AirflowVersion", ""))
    return ApiVersion.V2 if version.split(".")[0] == "3" else ApiVersion.V1


def _http_status(exc: Any) -> int | None:
    """The status of MWAA's own answer, which botocore keeps with the error."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _response(status: Any, payload: Any) -> Response:
    body = b"" if payload is None else json.dumps(payload).encode()
    return Response(int(status), body, {"Content-Type": "application/json"})
