"""functions/lambda_function.py with boto3 unmodified against the MWAA stand-in and moto, into
real Airflow 2 and 3: S3, EventBridge, SNS and SQS events, MWAA's two paths, Secrets Manager."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagtrigger import runtime
from tests.integration.helpers import lambda_handler, read_run
from tests.standins.aws_lambda import LambdaContext, sqs_record
from tests.standins.faults import FlakyFront
from tests.standins.mwaa import MwaaEnvironment, MwaaStandin
from tools.local_airflow import REPO, LocalAirflow, free_port

pytestmark = pytest.mark.airflow

EVENTS = Path(__file__).resolve().parent.parent / "events"
MWAA_VERSIONS = {"2": "2.10.3", "3": "3.0.6"}
ENV = "dagtrigger-test"


@pytest.fixture
def clean_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AIRFLOW_URL",
        "DAGTRIGGER_ROUTES",
        "AIRFLOW_AUTH",
    ):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    yield monkeypatch
    runtime.reset()


@pytest.fixture
def flaky(airflow: LocalAirflow) -> Iterator[FlakyFront]:
    with FlakyFront(airflow.url, failing=("/dags/dagtrigger_strict/",)) as front:
        yield front


@pytest.fixture
def mwaa(
    airflow: LocalAirflow, flaky: FlakyFront, clean_runtime: pytest.MonkeyPatch
) -> Iterator[MwaaStandin]:
    environment = MwaaEnvironment(
        ENV, flaky.url, MWAA_VERSIONS[airflow.major], airflow.admin_headers
    )
    with MwaaStandin({ENV: environment}) as standin:
        for name, value in standin.client_env().items():
            clean_runtime.setenv(name, value)
        clean_runtime.setenv("MWAA_ENVIRONMENT", ENV)
        clean_runtime.setenv("DAG_ID", "dagtrigger_example")
        clean_runtime.setenv("DAGTRIGGER_DEADLINE", "3")
        yield standin


@pytest.mark.parametrize(
    "sample",
    [
        "s3_put",
        "s3_eventbridge_object_created",
        "eventbridge_custom",
        "sns_s3_notification",
        "sns_plain",
    ],
)
def test_direct_events_through_invoke_rest_api_start_one_run_each(
    airflow: LocalAirflow, mwaa: MwaaStandin, sample: str
) -> None:
    event = json.loads((EVENTS / f"{sample}.json").read_text())
    expected = json.loads((EVENTS / f"{sample}.expected.json").read_text())["events"]
    handler = lambda_handler()

    first, *again = [handler(event, LambdaContext()) for _ in range(3)]

    assert len(first["runs"]) == len(expected)
    for answer in again:
        assert [run["outcome"] for run in answer["runs"]] == ["duplicate"] * len(expected)
    for run, event_expected in zip(first["runs"], expected, strict=True):
        stored = read_run(airflow, run["dag_id"], run["dag_run_id"])
        assert stored is not None
        if run["outcome"] == "created":
            assert stored["conf"] == event_expected["conf"]
    assert all(path.startswith("/dags/") for _, _, path in mwaa.invocations)
    assert mwaa.get_environment_calls == 1, "the environment is read once per container"


def test_an_sqs_batch_reports_only_the_transient_failure(
    airflow: LocalAirflow, mwaa: MwaaStandin, clean_runtime: pytest.MonkeyPatch, flaky: FlakyFront
) -> None:
    routes = [
        {"name": "flaky", "match": {"attributes": {"target": "flaky"}}, "dag_id": "dagtrigger_strict",
         "conf": {"partition": "2024-06-01"}},
        {"name": "everything", "dag_id": "dagtrigger_example"},
    ]  # fmt: skip
    clean_runtime.setenv("DAGTRIGGER_ROUTES", json.dumps(routes))
    s3_body = json.loads((EVENTS / "sqs_s3_notification.json").read_text())["Records"][0]["body"]
    batch = {
        "Records": [
            sqs_record(f"good-s3-{airflow.major}", s3_body),
            sqs_record(f"good-plain-{airflow.major}", '{"report": "daily"}'),
            sqs_record(
                f"poison-{airflow.major}", '{"Records": [{"eventSource": "aws:s3", "s3": {}}]}'
            ),
            sqs_record(f"transient-{airflow.major}", "retry me", target="flaky"),
        ]
    }
    answer = lambda_handler()(batch, LambdaContext())

    assert answer == {"batchItemFailures": [{"itemIdentifier": f"transient-{airflow.major}"}]}
    assert flaky.failed >= 1
    plain = [p for _, m, p in mwaa.invocations if m == "POST"]
    assert len(plain) >= 3, "the good records and the transient one reached Airflow"
    again = lambda_handler()({"Records": batch["Records"][:2]}, LambdaContext())
    assert again == {"batchItemFailures": []}


def test_a_permanent_failure_of_a_direct_invocation_goes_to_the_on_failure_destination(
    airflow: LocalAirflow, mwaa: MwaaStandin, clean_runtime: pytest.MonkeyPatch
) -> None:
    from dagtrigger.platforms.aws_lambda import EventFailed

    clean_runtime.setenv("DAG_ID", "no_such_dag")
    with pytest.raises(EventFailed) as caught:
        lambda_handler()(
            json.loads((EVENTS / "eventbridge_scheduled.json").read_text()), LambdaContext()
        )
    assert "'no_such_dag'" in str(caught.value)
    with pytest.raises(EventFailed) as bad:
        lambda_handler()(
            {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {}}}]}, LambdaContext()
        )
    assert "S3 record 1" in str(bad.value)


def test_access_denied_names_the_iam_statement_to_add(
    airflow: LocalAirflow, mwaa: MwaaStandin, clean_runtime: pytest.MonkeyPatch
) -> None:
    mwaa.allowed = {"AKIDSOMEONEELSE"}
    from dagtrigger.platforms.aws_lambda import EventFailed

    with pytest.raises(EventFailed) as caught:
        lambda_handler()(
            json.loads((EVENTS / "eventbridge_custom.json").read_text()), LambdaContext()
        )
    message = str(caught.value)
    assert "airflow:InvokeRestApi" in message
    assert f"arn:aws:airflow:eu-west-1:123456789012:role/{ENV}/Op" in message


def test_web_login_serves_higher_rates_with_one_login(
    airflow: LocalAirflow, mwaa: MwaaStandin, clean_runtime: pytest.MonkeyPatch
) -> None:
    clean_runtime.setenv("AIRFLOW_AUTH", "mwaa-web")
    handler = lambda_handler()
    for number in range(3):
        event = json.loads((EVENTS / "eventbridge_scheduled.json").read_text())
        event["id"] = f"web-login-{airflow.major}-{number}"
        answer = handler(event, LambdaContext())
        assert [run["outcome"] for run in answer["runs"]] == ["created"]
        assert read_run(airflow, "dagtrigger_example", answer["runs"][0]["dag_run_id"]) is not None
    assert mwaa.logins == 1 and mwaa.web_tokens_issued == 1
    assert mwaa.invocations == [], "web login talks to the web server, not invoke_rest_api"

    mwaa.expire_sessions()  # the web server forgets the session: dagtrigger logs in again, once
    event = json.loads((EVENTS / "eventbridge_scheduled.json").read_text())
    event["id"] = f"web-login-{airflow.major}-renewed"
    assert [run["outcome"] for run in handler(event, LambdaContext())["runs"]] == ["created"]
    assert mwaa.logins == 2


def test_self_hosted_airflow_with_credentials_from_secrets_manager(
    airflow: LocalAirflow, clean_runtime: pytest.MonkeyPatch
) -> None:
    import boto3
    from aws_lambda_powertools.utilities import parameters
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }.items():
            clean_runtime.setenv(name, value)
        secret = boto3.client("secretsmanager").create_secret(
            Name=f"dagtrigger/airflow{airflow.major}",
            SecretString=json.dumps({"username": "admin", "password": airflow.admin_password}),
        )
        clean_runtime.setenv("AIRFLOW_URL", airflow.url)
        clean_runtime.setenv("AIRFLOW_SECRET_ARN", secret["ARN"])
        clean_runtime.setenv("DAG_ID", "dagtrigger_example")
        parameters.clear_caches()
        event = json.loads((EVENTS / "eventbridge_scheduled.json").read_text())
        event["id"] = f"secret-{airflow.major}"
        answer = lambda_handler()(event, LambdaContext())
    finally:
        server.stop()
    (run,) = answer["runs"]
    assert run["outcome"] == "created"
    assert read_run(airflow, "dagtrigger_example", run["dag_run_id"]) is not None


def test_metrics_are_emitted_as_embedded_metric_format(
    airflow: LocalAirflow, mwaa: MwaaStandin, capsys: pytest.CaptureFixture[str]
) -> None:
    event = json.loads((EVENTS / "eventbridge_scheduled.json").read_text())
    event["id"] = f"metrics-{airflow.major}"
    handler = lambda_handler()
    capsys.readouterr()
    handler(event, LambdaContext())
    handler(event, LambdaContext())
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [b.get("RunsCreated") for b in blobs] == [[1.0], None] or [
        b.get("RunsCreated") for b in blobs
    ] == [1.0, None]
    assert blobs[1].get("Duplicates") in (1.0, [1.0])
    namespaces = {m["Namespace"] for b in blobs for m in b["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"dagtrigger"}


def test_the_handler_never_imports_google_or_functions_framework() -> None:
    probe = (
        "import sys; sys.path.insert(0, 'functions'); import lambda_function; "
        "loaded = [m for m in sys.modules if m.startswith(('google.auth', 'google.cloud.storage', "
        "'functions_framework'))]; print(loaded)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
