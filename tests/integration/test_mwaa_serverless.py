"""MWAA Serverless end to end: functions/lambda_function.py and the CLI, with boto3 unmodified
against the stand-in (SigV4 verified with botocore's own signer, runs kept, ClientToken replays
answered with the run they started, throttling on demand)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagtrigger import runtime
from dagtrigger.airflow import mwaa_serverless
from dagtrigger.cli import main
from dagtrigger.doctor import run_doctor
from tests.integration.helpers import lambda_handler
from tests.standins.aws_lambda import LambdaContext, sqs_record
from tests.standins.mwaa_serverless import MwaaServerlessStandin, Workflow

EVENTS = Path(__file__).resolve().parent.parent / "events"
STRICT = Workflow(
    "strict",
    frozenset({"partition"}),
    suffix="0123456789",
    definition="strict:\n  params:\n    partition:\n      type: string\n  tasks: {}\n",
)


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[MwaaServerlessStandin]:
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AIRFLOW_URL",
        "DAG_ID",
        "DAGTRIGGER_ROUTES",
        "AIRFLOW_AUTH",
        "MWAA_ENVIRONMENT",
        "COMPOSER_ENVIRONMENT",
    ):
        monkeypatch.delenv(name, raising=False)
    # The stand-in shares the test's clock: a replayed run's StartedAt is exact.
    monkeypatch.setattr(mwaa_serverless, "REPLAY_TOLERANCE", 0.0)
    with MwaaServerlessStandin([Workflow("etl"), STRICT, Workflow("spare")]) as standin:
        for name, value in standin.client_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("MWAA_SERVERLESS_WORKFLOW", standin.arn("etl"))
        monkeypatch.setenv("DAGTRIGGER_DEADLINE", "3")
        runtime.reset()
        yield standin
    runtime.reset()


# ---- the Lambda entry point ----


@pytest.mark.parametrize(
    "sample", ["s3_put", "s3_eventbridge_object_created", "eventbridge_custom"]
)
def test_direct_events_start_one_workflow_run_each(
    service: MwaaServerlessStandin, sample: str
) -> None:
    event = json.loads((EVENTS / f"{sample}.json").read_text())
    expected = json.loads((EVENTS / f"{sample}.expected.json").read_text())["events"]
    handler = lambda_handler()

    first, *again = [handler(event, LambdaContext()) for _ in range(3)]

    assert [run["outcome"] for run in first["runs"]] == ["created"] * len(expected)
    for answer in again:
        assert [run["outcome"] for run in answer["runs"]] == ["duplicate"] * len(expected)
    runs = service.runs_of("etl")
    assert len(runs) == len(expected)
    assert [run.parameters for run in runs] == [e["conf"] for e in expected]
    assert all(run.token and run.token.startswith("dagtrigger-") for run in runs)
    assert len(service.operations("StartWorkflowRun")) == 3 * len(expected)


def test_sqs_records_delivered_three_times_start_one_run_each(
    service: MwaaServerlessStandin,
) -> None:
    body = json.loads((EVENTS / "sqs_s3_notification.json").read_text())["Records"][0]["body"]
    batch = {"Records": [sqs_record("s3", body), sqs_record("plain", '{"report": "daily"}')]}
    handler = lambda_handler()

    answers = [handler(batch, LambdaContext()) for _ in range(3)]

    assert answers == [{"batchItemFailures": []}] * 3
    assert len(service.runs_of("etl")) == 2
    assert {run.parameters.get("data", {}).get("report") for run in service.runs} >= {"daily"}


def test_a_name_is_resolved_once_and_routes_name_their_own_workflow(
    service: MwaaServerlessStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MWAA_SERVERLESS_WORKFLOW", "etl")
    routes = [
        {"name": "strict", "match": {"source": "com.acme.orders"}, "dag_id": "strict",
         "conf": {"partition": "2024-06-01"}, "replace_conf": True},
        {"name": "everything"},
    ]  # fmt: skip
    monkeypatch.setenv("DAGTRIGGER_ROUTES", json.dumps(routes))
    handler = lambda_handler()
    event = json.loads((EVENTS / "eventbridge_custom.json").read_text())

    answer = handler(event, LambdaContext())
    handler(json.loads((EVENTS / "eventbridge_scheduled.json").read_text()), LambdaContext())

    assert sorted(run["dag_id"] for run in answer["runs"]) == ["etl", "strict"]
    assert [run.parameters for run in service.runs_of("strict")] == [{"partition": "2024-06-01"}]
    assert len(service.runs_of("etl")) == 2
    assert len(service.operations("ListWorkflows")) == 2, "one lookup: both pages, once"


def test_throttling_waits_retry_after_seconds_inside_the_deadline(
    service: MwaaServerlessStandin,
) -> None:
    service.inject("ThrottlingException", retry_after=1)
    started = time.monotonic()

    answer = lambda_handler()(
        json.loads((EVENTS / "eventbridge_scheduled.json").read_text()), LambdaContext()
    )

    assert [run["outcome"] for run in answer["runs"]] == ["created"]
    assert time.monotonic() - started >= 1.0
    assert len(service.operations("StartWorkflowRun")) == 2
    assert len(service.runs) == 1


def test_throttling_past_the_deadline_hands_the_event_back(
    service: MwaaServerlessStandin,
) -> None:
    from dagtrigger.platforms.aws_lambda import EventFailed

    service.inject("ThrottlingException", retry_after=30)
    with pytest.raises(EventFailed) as caught:
        lambda_handler()(
            json.loads((EVENTS / "eventbridge_scheduled.json").read_text()), LambdaContext()
        )

    assert "ThrottlingException" in str(caught.value)
    assert len(service.operations("StartWorkflowRun")) == 1, "30 s do not fit in the deadline"
    assert service.runs == []


def test_access_denied_names_the_statement_and_the_role(
    service: MwaaServerlessStandin,
) -> None:
    from dagtrigger.platforms.aws_lambda import EventFailed

    service.allowed = {"AKIDSOMEONEELSE": {"StartWorkflowRun"}}
    with pytest.raises(EventFailed) as caught:
        lambda_handler()(
            json.loads((EVENTS / "eventbridge_custom.json").read_text()), LambdaContext()
        )

    message = str(caught.value)
    assert '"Action": "airflow-serverless:StartWorkflowRun"' in message
    assert f'"Resource": "{service.arn("etl")}"' in message
    assert "arn:aws:iam::123456789012:user/AKIDSERVERLESS" in message
    assert service.runs == []


def test_an_unknown_workflow_is_a_permanent_failure(
    service: MwaaServerlessStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagtrigger.platforms.aws_lambda import EventFailed

    missing = service.arn("etl").replace("etl-a1b2c3d4e5", "gone-a1b2c3d4e5")
    monkeypatch.setenv("MWAA_SERVERLESS_WORKFLOW", missing)
    with pytest.raises(EventFailed) as caught:
        lambda_handler()(
            json.loads((EVENTS / "eventbridge_custom.json").read_text()), LambdaContext()
        )

    assert missing in str(caught.value) and "was not found" in str(caught.value)
    assert len(service.operations("StartWorkflowRun")) == 1, "not retried"


def test_an_sqs_batch_reports_only_the_transient_failure(
    service: MwaaServerlessStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = [
        {"name": "strict", "match": {"attributes": {"target": "strict"}}, "dag_id": "strict"},
        {"name": "etl", "match": {"attributes": {"target": "etl"}}},
    ]  # fmt: skip
    monkeypatch.setenv("DAGTRIGGER_ROUTES", json.dumps(routes))
    # the strict workflow refuses the default conf's parameters: a poisoned record
    service.inject(
        "InternalServerException",
        times=10,
        when=lambda body: body.get("OverrideParameters", {}).get("data") == "retry me",
    )
    batch = {
        "Records": [
            sqs_record("good", '{"report": "daily"}', target="etl"),
            sqs_record("poisoned", "refused", target="strict"),
            sqs_record("transient", "retry me", target="etl"),
        ]
    }

    answer = lambda_handler()(batch, LambdaContext())

    assert answer == {"batchItemFailures": [{"itemIdentifier": "transient"}]}
    assert [run.parameters["data"] for run in service.runs_of("etl")] == [{"report": "daily"}]
    assert service.runs_of("strict") == []


# ---- the CLI ----


def test_cli_plan_send_trigger_wait_and_doctor(
    service: MwaaServerlessStandin, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    event = str(EVENTS / "eventbridge_scheduled.json")

    assert main(["plan", event]) == 0
    (planned,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert planned["dag_id"] == "etl-a1b2c3d4e5"

    assert main(["send", event]) == 0
    assert main(["send", event]) == 0
    sent = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["outcome"] for line in sent] == ["created", "duplicate"]
    assert len(service.runs) == 1

    code = main(["trigger", "spare", "--conf", '{"day": "2024-06-01"}', "--wait", "--poll", "0.1"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert lines[0]["outcome"] == "created" and lines[-1]["state"] == "success"
    assert [run.parameters for run in service.runs_of("spare")] == [{"day": "2024-06-01"}]
    assert service.operations("GetWorkflowRun"), "--wait follows the run with GetWorkflowRun"

    (tmp_path / "event.json").write_text((EVENTS / "eventbridge_custom.json").read_text())
    assert main(["doctor", "--event", str(tmp_path / "event.json"), "--write-check"]) == 0
    checklist = capsys.readouterr().out
    assert "workflow etl-a1b2c3d4e5 exists" in checklist
    assert "may start etl-a1b2c3d4e5" in checklist
    assert len(service.runs) == 2, "doctor's probe started no run"


def test_doctor_names_what_is_wrong(
    service: MwaaServerlessStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = [{"name": "strict", "dag_id": "strict"}]
    monkeypatch.setenv("DAGTRIGGER_ROUTES", json.dumps(routes))
    event = json.loads((EVENTS / "eventbridge_custom.json").read_text())
    service.allowed = {"AKIDSERVERLESS": {"ListWorkflows", "GetWorkflow"}}
    import os

    results = {r.key: r for r in run_doctor(dict(os.environ), event=event, write_check=True)}

    assert results["workflow.exists:strict"].status == "ok"
    denied = results["workflow.start:strict"]
    assert denied.status == "fail"
    assert denied.fix is not None and "airflow-serverless:StartWorkflowRun" in denied.fix
    params = results["workflow.params:strict"]
    assert params.status == "warn" and "partition" in params.message
    assert service.runs == []
