"""Self-hosted Airflow from Lambda: the Airflow credentials kept in AWS Secrets Manager.

The secret holds `{"username": ..., "password": ...}` or `{"token": ...}`. It is read through
powertools parameters, which caches it for five minutes across warm invocations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagtrigger.aws import withhold_response_bodies
from dagtrigger.errors import ConfigurationError

MAX_AGE_SECONDS = 300


def read_airflow_secret(arn: str) -> Mapping[str, str]:
    try:
        from aws_lambda_powertools.utilities import parameters
        from aws_lambda_powertools.utilities.parameters.exceptions import (
            GetParameterError,
            TransformParameterError,
        )
    except ImportError as exc:
        raise ConfigurationError(
            "AIRFLOW_SECRET_ARN needs aws-lambda-powertools", fix="pip install 'dagtrigger[aws]'"
        ) from exc
    withhold_response_bodies()  # the secret's value is a response body
    try:
        value: Any = parameters.get_secret(arn, transform="json", max_age=MAX_AGE_SECONDS)
    except TransformParameterError as exc:
        raise ConfigurationError(
            f"AIRFLOW_SECRET_ARN={arn} is not JSON", fix=f"store {_SHAPE}."
        ) from exc
    except GetParameterError as exc:
        raise ConfigurationError(
            f"AIRFLOW_SECRET_ARN={arn} cannot be read ({exc})",
            fix="check it exists in the function's region and allow the function's role "
            f"secretsmanager:GetSecretValue on {arn}.",
        ) from exc
    if isinstance(value, dict):
        if isinstance(value.get("token"), str) and value["token"]:
            return {"token": value["token"]}
        if all(isinstance(value.get(key), str) and value[key] for key in ("username", "password")):
            return {"username": value["username"], "password": value["password"]}
    raise ConfigurationError(
        f"AIRFLOW_SECRET_ARN={arn} holds no usable credentials", fix=f"store {_SHAPE}."
    )


_SHAPE = '{"username": "...", "password": "..."} or {"token": "..."}'
