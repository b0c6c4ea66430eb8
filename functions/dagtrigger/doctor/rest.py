"""`dagtrigger api`: one authenticated call to any Airflow REST endpoint, through the configured
auth path, with the version prefix added for the server at hand."""

from __future__ import annotations

from typing import Any

from dagtrigger.airflow.client import AirflowClient
from dagtrigger.doctor.context import strip_api_prefix
from dagtrigger.errors import ConfigurationError
from dagtrigger.http import Response


def call_rest(client: AirflowClient, method: str, path: str, body: Any = None) -> Response:
    """`path` with or without /api/vN: "/dags" and "/api/v2/dags" are the same call."""
    transport = client.transport
    relative = strip_api_prefix(path)
    if transport.max_path_length is not None and "?" in relative:
        raise ConfigurationError(
            "invoke_rest_api takes no query string in the path",
            fix="leave it out, or set AIRFLOW_AUTH=mwaa-web to call the web server directly.",
        )
    return transport.request(method.upper(), client.api_version.prefix + relative, json_body=body)
