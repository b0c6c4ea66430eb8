"""The MWAA Serverless stand-in answers boto3, unmodified, as the service's model says: SigV4 for
`airflow-serverless` checked, runs kept, ClientToken replays, throttling on demand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.standins.mwaa_serverless import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    MwaaServerlessStandin,
    Workflow,
)


@pytest.fixture
def service() -> Iterator[MwaaServerlessStandin]:
    with MwaaServerlessStandin(
        [Workflow("etl", frozenset({"day"})), Workflow("b"), Workflow("c")], run_seconds=60
    ) as standin:
        yield standin


def _client(service: MwaaServerlessStandin, secret: str = DEFAULT_SECRET_KEY, **kw: Any) -> Any:
    return boto3.client(
        "mwaa-serverless",
        endpoint_url=service.url,
        region_name=kw.get("region", service.region),
        aws_access_key_id=DEFAULT_ACCESS_KEY,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_a_client_token_starts_one_run_and_replays_answer_it(
    service: MwaaServerlessStandin,
) -> None:
    client = _client(service)
    arn = service.arn("etl")

    first = client.start_workflow_run(
        WorkflowArn=arn, ClientToken="t", OverrideParameters={"day": 1}
    )
    again = client.start_workflow_run(
        WorkflowArn=arn, ClientToken="t", OverrideParameters={"day": 1}
    )
    with pytest.raises(ClientError) as conflict:
        client.start_workflow_run(WorkflowArn=arn, ClientToken="t", OverrideParameters={"day": 2})

    assert (first["RunId"], first["StartedAt"]) == (again["RunId"], again["StartedAt"])
    assert conflict.value.response["Error"]["Code"] == "ConflictException"
    assert conflict.value.response["ResourceId"] == first["RunId"]
    run = client.get_workflow_run(WorkflowArn=arn, RunId=first["RunId"])
    assert run["OverrideParameters"] == {"day": 1}
    assert [r.run_id for r in service.runs] == [first["RunId"]]


def test_signatures_are_checked_with_botocore_s_signer(service: MwaaServerlessStandin) -> None:
    with pytest.raises(ClientError) as wrong_secret:
        _client(service, secret="not-the-secret").list_workflows()
    with pytest.raises(ClientError) as wrong_region:
        _client(service, region="us-east-1").list_workflows()

    assert wrong_secret.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert wrong_region.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_throttling_on_demand_carries_retry_after_seconds(service: MwaaServerlessStandin) -> None:
    service.inject("ThrottlingException", retry_after=4)
    client = _client(service)

    with pytest.raises(ClientError) as throttled:
        client.start_workflow_run(WorkflowArn=service.arn("b"))
    client.start_workflow_run(WorkflowArn=service.arn("b"))

    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert throttled.value.response["RetryAfterSeconds"] == 4
    assert len(service.runs) == 1


def test_undeclared_parameters_unknown_workflows_and_pages(service: MwaaServerlessStandin) -> None:
    client = _client(service)
    with pytest.raises(ClientError) as refused:
        client.start_workflow_run(WorkflowArn=service.arn("etl"), OverrideParameters={"x": 1})
    with pytest.raises(ClientError) as missing:
        client.get_workflow(WorkflowArn=service.arn("etl").replace("etl-", "gone-"))
    pages = list(client.get_paginator("list_workflows").paginate())

    assert refused.value.response["FieldList"][0]["Name"] == "OverrideParameters.x"
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert len(pages) == 2
    assert sorted(w["Name"] for p in pages for w in p["Workflows"]) == ["b", "c", "etl"]
