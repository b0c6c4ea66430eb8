"""boto3 clients for dagtrigger's AWS paths, built on first use and classified errors.

boto3 is imported only here and by the modules that use this one.
"""

from __future__ import annotations

import logging
from typing import Any

from dagtrigger.errors import ConfigurationError


def mwaa_client(timeout: float) -> Any:
    """An MWAA client whose retries are left to dagtrigger's own policy (backoff within a deadline).

    botocore's own settings apply: AWS_ENDPOINT_URL_MWAA for a VPC endpoint, with
    AWS_DISABLE_HOST_PREFIX_INJECTION=true since such an endpoint has no env./api. host prefixes.
    """
    return boto3_client("mwaa", "MWAA_ENVIRONMENT", timeout)


def boto3_client(service: str, setting: str, timeout: float, *, too_old_fix: str = "") -> Any:
    """A boto3 client for `service` (which `setting` asked for) that leaves retries to
    dagtrigger's own policy. No boto3, or a botocore that predates the service (a Lambda
    runtime's may), is a configuration error: the event is kept until the deployment is fixed."""
    try:
        import boto3
        import botocore
        from botocore.config import Config
        from botocore.exceptions import UnknownServiceError
    except ImportError as exc:
        raise ConfigurationError(
            f"{setting} needs boto3", fix="pip install 'dagtrigger[aws]'"
        ) from exc
    config = Config(
        retries={"total_max_attempts": 1}, connect_timeout=min(timeout, 5.0), read_timeout=timeout
    )
    withhold_response_bodies()
    try:
        return boto3.client(service, config=config)
    except UnknownServiceError as exc:
        raise ConfigurationError(
            f"botocore {botocore.__version__} has no {service} service (it came later)",
            fix=too_old_fix or "pip install -U boto3.",
        ) from exc


class _WithholdResponseBodies(logging.Filter):
    """Keeps botocore's DEBUG line for each response, without the body."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Response body"):
            record.msg, record.args = "Response body: (withheld by dagtrigger)", ()
        return True


def withhold_response_bodies() -> None:
    """botocore logs every response body at DEBUG (on Lambda, ApplicationLogLevel=DEBUG is enough):
    GetSecretValue's holds the Airflow password, CreateWebLoginToken's a login token."""
    parsers = logging.getLogger("botocore.parsers")
    if not any(isinstance(f, _WithholdResponseBodies) for f in parsers.filters):
        parsers.addFilter(_WithholdResponseBodies())


def boto_error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    return str(error.get("Code", type(exc).__name__))
