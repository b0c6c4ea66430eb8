"""MWAA invoke_rest_api: what becomes of each answer (botocore's Stubber plays MWAA here;
tests/integration/test_lambda.py runs the same code against a MWAA stand-in over the wire)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from dagtrigger.airflow.client import AirflowClient
from dagtrigger.airflow.mwaa import MwaaIamAuth, MwaaTransport, PathTooLongError, api_version_of
from dagtrigger.airflow.retry import RetryPolicy
from dagtrigger.errors import (
    AuthorizationError,
    ConfigurationError,
    ErrorKind,
    TransientTriggerError,
)

ENV = "prod"


@pytest.fixture
def mwaa() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "mwaa", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _transport(client: Any) -> MwaaTransport:
    return MwaaTransport(ENV, client, MwaaIamAuth(ENV, "eu-west-1", "123456789012"))


def test_the_api_prefix_is_dropped_and_the_body_passed(mwaa: tuple[Any, Stubber]) -> None:
    client, stubber = mwaa
    stubber.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": {"dag_run_id": "r"}},
        {"Name": ENV, "Path": "/dags/d/dagRuns", "Method": "POST", "Body": {"conf": {}}},
    )
    response = _transport(client).request("POST", "/api/v2/dags/d/dagRuns", json_body={"conf": {}})
    assert response.status == 200 and json.loads(response.body) == {"dag_run_id": "r"}


def test_airflow_errors_come_back_with_airflow_status(mwaa: tuple[Any, Stubber]) -> None:
    client, stubber = mwaa
    stubber.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiClientException",
        http_status_code=400,
        modeled_fields={"RestApiStatusCode": 409, "RestApiResponse": {"detail": "exists"}},
    )
    response = _transport(client).request("POST", "/api/v1/dags/d/dagRuns", json_body={})
    assert response.status == 409 and response.detail() == "exists"


def test_access_denied_names_the_iam_statement(mwaa: tuple[Any, Stubber]) -> None:
    client, stubber = mwaa
    stubber.add_client_error(
        "invoke_rest_api", service_error_code="AccessDeniedException", http_status_code=403
    )
    with pytest.raises(AuthorizationError) as caught:
        _transport(client).request("POST", "/api/v1/dags/d/dagRuns", json_body={})
    message = str(caught.value)
    assert "airflow:InvokeRestApi" in message
    assert "arn:aws:airflow:eu-west-1:123456789012:role/prod/Op" in message
    assert caught.value.fix is not None and "airflow:InvokeRestApi" in caught.value.fix
    assert "airflow:InvokeRestApi" not in caught.value.problem


def test_throttling_is_transient(mwaa: tuple[Any, Stubber]) -> None:
    client, stubber = mwaa
    stubber.add_client_error(
        "invoke_rest_api", service_error_code="ThrottlingException", http_status_code=429
    )
    with pytest.raises(TransientTriggerError) as caught:
        _transport(client).request("POST", "/api/v1/dags/d/dagRuns", json_body={})
    assert (caught.value.kind, caught.value.status) == (ErrorKind.THROTTLED, 429)


def test_an_unknown_environment_is_a_configuration_error(mwaa: tuple[Any, Stubber]) -> None:
    client, stubber = mwaa
    stubber.add_client_error(
        "invoke_rest_api", service_error_code="ResourceNotFoundException", http_status_code=404
    )
    with pytest.raises(ConfigurationError) as caught:
        _transport(client).request("GET", "/api/v1/dags")
    assert "MWAA_ENVIRONMENT=prod" in str(caught.value)
    assert caught.value.kind is ErrorKind.CONFIGURATION


def test_a_path_over_64_characters_is_refused_before_sending(mwaa: tuple[Any, Stubber]) -> None:
    client, _ = mwaa
    with pytest.raises(PathTooLongError) as caught:
        _transport(client).request("POST", f"/api/v1/dags/{'d' * 60}/dagRuns", json_body={})
    assert "64 characters" in str(caught.value) and "AIRFLOW_AUTH=mwaa-web" in str(caught.value)


@pytest.mark.parametrize(
    ("detail", "version", "outcome"),
    [
        ("DAGRun with DAG ID: 'd' and DAGRun ID: 'x' already exists", "v1", "duplicate"),
        ("Unique constraint violation", "v2", "duplicate"),
    ],
)
def test_a_conflict_on_a_run_id_too_long_to_read_back_counts_as_duplicate(
    mwaa: tuple[Any, Stubber], detail: str, version: str, outcome: str
) -> None:
    client, stubber = mwaa
    stubber.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiClientException",
        http_status_code=400,
        modeled_fields={"RestApiStatusCode": 409, "RestApiResponse": {"detail": detail}},
    )
    airflow = AirflowClient(_transport(client), api_version=version, retry=RetryPolicy(deadline=1))
    result = airflow.trigger("d", "gcs__finalized__" + "x" * 80, {})
    assert result.outcome == outcome


def test_an_old_botocore_is_named_with_the_version_it_needs() -> None:
    class OldClient:
        pass

    with pytest.raises(ConfigurationError) as caught:
        _transport(OldClient())
    assert "1.35.47" in str(caught.value)


@pytest.mark.parametrize(("version", "api"), [("2.10.3", "v1"), ("3.0.6", "v2")])
def test_the_airflow_version_decides_the_api(version: str, api: str) -> None:
    assert api_version_of({"AirflowVersion": version}) == api
