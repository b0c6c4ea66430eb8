"""MWAA Serverless without a network: each of the service's errors classified once, the
ClientToken, the settings that choose the target, and the trigger's retries and duplicates
(botocore's Stubber plays the service; the wire is proven against the stand-in elsewhere)."""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from dagtrigger.airflow.client import Outcome
from dagtrigger.airflow.mwaa_serverless import WorkflowClient, classify_error, workflow_label
from dagtrigger.airflow.retry import RetryPolicy
from dagtrigger.errors import (
    AuthorizationError,
    ConfigurationError,
    ConfRejectedError,
    DagNotFoundError,
    ErrorKind,
    PermanentTriggerError,
    TransientTriggerError,
)
from dagtrigger.run_id import build_client_token
from dagtrigger.settings import AuthMode, Settings

ARN = "arn:aws:airflow-serverless:eu-west-1:123456789012:workflow/etl-a1b2c3d4e5"
ROLE = "arn:aws:sts::123456789012:assumed-role/dagtrigger-fn/dagtrigger"


def client_error(code: str, status: int, **members: Any) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"message of {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **members,
    }
    return ClientError(response, "StartWorkflowRun")


# ---- classification, one service error at a time ----


def test_throttling_is_transient_and_waits_retry_after_seconds() -> None:
    error = classify_error(
        client_error("ThrottlingException", 429, RetryAfterSeconds=7), "StartWorkflowRun", ARN
    )

    assert isinstance(error, TransientTriggerError)
    assert (error.kind, error.status, error.retry_after) == (ErrorKind.THROTTLED, 429, 7.0)


def test_a_quota_of_concurrent_runs_is_transient_and_names_the_quota() -> None:
    error = classify_error(
        client_error("ServiceQuotaExceededException", 402, QuotaCode="L-RUNS"),
        "StartWorkflowRun",
        ARN,
    )

    assert isinstance(error, TransientTriggerError)
    assert error.kind is ErrorKind.THROTTLED
    assert error.fix is not None and "L-RUNS" in error.fix


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("InternalServerException", ErrorKind.SERVER_ERROR),
        ("OperationTimeoutException", ErrorKind.TIMEOUT),
    ],
)
def test_server_side_failures_are_transient(code: str, kind: ErrorKind) -> None:
    error = classify_error(client_error(code, 500), "StartWorkflowRun", ARN)

    assert isinstance(error, TransientTriggerError)
    assert error.kind is kind


def test_access_denied_names_the_statement_and_the_role() -> None:
    exc = client_error("AccessDeniedException", 403)
    exc.response["Error"]["Message"] = (
        f"User: {ROLE} is not authorized to perform: airflow-serverless:StartWorkflowRun on "
        f"resource: {ARN}"
    )

    error = classify_error(exc, "StartWorkflowRun", ARN)

    assert isinstance(error, AuthorizationError)
    assert error.kind is ErrorKind.AUTHORIZATION and not error.retryable
    assert error.fix is not None
    assert '"Action": "airflow-serverless:StartWorkflowRun"' in error.fix
    assert f'"Resource": "{ARN}"' in error.fix
    assert ROLE in error.fix


def test_an_unknown_workflow_is_permanent() -> None:
    error = classify_error(
        client_error("ResourceNotFoundException", 404, ResourceType="Workflow"),
        "StartWorkflowRun",
        ARN,
    )

    assert isinstance(error, DagNotFoundError)
    assert error.fix is not None and "MWAA_SERVERLESS_WORKFLOW" in error.fix


def test_refused_parameters_name_the_parameter_and_the_fix() -> None:
    fields = [{"Name": "OverrideParameters.bucket", "Message": "not a workflow parameter"}]
    error = classify_error(
        client_error("ValidationException", 400, Reason="fieldValidationFailed", FieldList=fields),
        "StartWorkflowRun",
        ARN,
        {"OverrideParameters": {"bucket": "b"}},
    )

    assert isinstance(error, ConfRejectedError)
    assert error.kind is ErrorKind.CONF_REJECTED and not error.retryable
    assert "OverrideParameters.bucket" in error.problem
    assert error.fix is not None and "replace_conf" in error.fix


def test_another_validation_error_is_a_permanent_rejection() -> None:
    fields = [{"Name": "WorkflowArn", "Message": "bad"}]
    error = classify_error(
        client_error("ValidationException", 400, FieldList=fields), "GetWorkflow", ARN
    )

    assert isinstance(error, PermanentTriggerError)
    assert error.kind is ErrorKind.REJECTED


def test_a_conflict_about_the_workflow_is_a_permanent_refusal() -> None:
    error = classify_error(
        client_error("ConflictException", 409, ResourceType="Workflow", ResourceId=ARN),
        "StartWorkflowRun",
        ARN,
    )

    assert isinstance(error, PermanentTriggerError)
    assert error.kind is ErrorKind.REFUSED
    assert error.fix is not None


def test_an_unknown_code_is_classified_by_its_status() -> None:
    assert classify_error(client_error("Odd", 503), "StartWorkflowRun", ARN).retryable
    assert not classify_error(client_error("Odd", 400), "StartWorkflowRun", ARN).retryable


# ---- the token ----


def test_the_client_token_is_deterministic_short_printable_and_per_workflow() -> None:
    token = build_client_token("s3__Put__bucket_key__0123456789abcdef0123", ARN)

    assert token == build_client_token("s3__Put__bucket_key__0123456789abcdef0123", ARN)
    assert 1 <= len(token) <= 128
    assert all("!" <= char <= "~" for char in token)
    assert token != build_client_token("s3__Put__bucket_key__0123456789abcdef0123", ARN + "x")
    assert token != build_client_token("s3__Put__bucket_key__0123456789abcdef0124", ARN)


# ---- settings ----


def test_a_workflow_chooses_the_target_and_is_the_dag_of_every_event() -> None:
    settings = Settings.from_env({"MWAA_SERVERLESS_WORKFLOW": ARN})

    assert settings.auth is AuthMode.MWAA_SERVERLESS
    assert settings.dag_id == workflow_label(ARN) == "etl-a1b2c3d4e5"


def test_the_explicit_choice_takes_routes_naming_workflows() -> None:
    settings = Settings.from_env({"AIRFLOW_AUTH": "mwaa-serverless", "DAGTRIGGER_ROUTES": "[]"})

    assert settings.auth is AuthMode.MWAA_SERVERLESS
    assert settings.mwaa_serverless_workflow is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MWAA_SERVERLESS_WORKFLOW": "etl", "AIRFLOW_URL": "https://a.example"}, "AIRFLOW_URL"),
        ({"MWAA_SERVERLESS_WORKFLOW": "etl", "MWAA_ENVIRONMENT": "env"}, "MWAA_ENVIRONMENT"),
        ({"MWAA_SERVERLESS_WORKFLOW": "etl", "DAG_ID": "x"}, "DAG_ID"),
        ({"MWAA_SERVERLESS_WORKFLOW": "etl", "AIRFLOW_AUTH": "mwaa"}, "AIRFLOW_AUTH"),
        ({"MWAA_SERVERLESS_WORKFLOW": "arn:aws:s3:::bucket"}, "MWAA_SERVERLESS_WORKFLOW"),
    ],
)
def test_a_workflow_refuses_other_targets_with_a_fix(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(env)

    assert named in raised.value.problem
    assert raised.value.fix


# ---- the trigger, against botocore's Stubber ----


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client(
        "mwaa-serverless",
        region_name="eu-west-1",
        aws_access_key_id="AKID",
        aws_secret_access_key="secret",
    )
    with Stubber(client) as stubber:
        yield client, stubber


def _workflows(client: Any, now: float) -> WorkflowClient:
    return WorkflowClient(
        client, ARN, retry=RetryPolicy(deadline=5, sleep=lambda _: None), wall_clock=lambda: now
    )


def test_a_new_run_is_created_and_a_replayed_token_is_a_duplicate(stubbed: Any) -> None:
    client, stubber = stubbed
    started = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    token = build_client_token("run-1", ARN)
    expected = {"WorkflowArn": ARN, "ClientToken": token, "OverrideParameters": {"a": 1}}
    answer = {"RunId": "r1", "Status": "STARTING", "StartedAt": started}
    stubber.add_response("start_workflow_run", answer, expected)
    stubber.add_response("start_workflow_run", answer, expected)

    first = _workflows(client, started.timestamp()).trigger("etl-a1b2c3d4e5", "run-1", {"a": 1})
    later = _workflows(client, started.timestamp() + 60).trigger(ARN, "run-1", {"a": 1})

    assert (first.outcome, first.dag_run_id, first.state) == (Outcome.CREATED, "r1", "queued")
    assert (later.outcome, later.dag_run_id) == (Outcome.DUPLICATE, "r1")


def test_throttling_is_retried_after_retry_after_seconds(stubbed: Any) -> None:
    client, stubber = stubbed
    slept: list[float] = []
    stubber.add_client_error(
        "start_workflow_run",
        "ThrottlingException",
        http_status_code=429,
        modeled_fields={
            "Message": "slow",
            "ServiceCode": "s",
            "QuotaCode": "q",
            "RetryAfterSeconds": 2,
        },
    )
    stubber.add_response("start_workflow_run", {"RunId": "r2", "Status": "STARTING"})
    retry = RetryPolicy(deadline=10, sleep=slept.append, retry_after_spread=0)
    workflows = WorkflowClient(client, ARN, retry=retry)

    result = workflows.trigger(ARN, "run-2", {})

    assert result.outcome is Outcome.CREATED and result.attempts == 2
    assert slept == [2.0]


def test_a_conflict_about_the_run_is_a_duplicate(stubbed: Any) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "start_workflow_run",
        "ConflictException",
        http_status_code=409,
        modeled_fields={"Message": "exists", "ResourceId": "r3", "ResourceType": "WorkflowRun"},
    )

    result = _workflows(client, 0).trigger(ARN, "run-3", {})

    assert (result.outcome, result.dag_run_id) == (Outcome.DUPLICATE, "r3")


def test_a_name_is_looked_up_once_across_pages(stubbed: Any) -> None:
    client, stubber = stubbed
    other = ARN.replace("etl-a1b2c3d4e5", "other-0000000000")
    stubber.add_response(
        "list_workflows", {"Workflows": [{"WorkflowArn": other, "Name": "other"}], "NextToken": "n"}
    )
    stubber.add_response("list_workflows", {"Workflows": [{"WorkflowArn": ARN, "Name": "etl"}]})
    workflows = WorkflowClient(client)

    assert workflows.workflow_arn("etl") == ARN
    assert workflows.workflow_arn("etl") == ARN  # no third call: the Stubber would refuse it
    assert workflows.workflow_arn("other") == other


def test_a_name_no_workflow_has_is_permanent_and_lists_the_names(stubbed: Any) -> None:
    client, stubber = stubbed
    stubber.add_response("list_workflows", {"Workflows": [{"WorkflowArn": ARN, "Name": "etl"}]})

    with pytest.raises(DagNotFoundError) as raised:
        WorkflowClient(client).workflow_arn("missing")

    assert "etl" in raised.value.problem
    assert raised.value.fix is not None


def test_a_botocore_without_the_service_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Lambda runtime's botocore may predate MWAA Serverless: the event is kept, the fix named."""
    from botocore.exceptions import UnknownServiceError

    from dagtrigger.airflow.mwaa_serverless import serverless_client

    def older_botocore(service: str, **_: Any) -> Any:
        raise UnknownServiceError(service_name=service, known_service_names="mwaa")

    monkeypatch.setattr(boto3, "client", older_botocore)
    with pytest.raises(ConfigurationError) as raised:
        serverless_client(5.0)

    assert "no mwaa-serverless service" in raised.value.problem
    assert raised.value.fix is not None and "make package-aws WITH_SDK=1" in raised.value.fix
