"""The Lambda's metrics: the embedded metric format (EMF) line the handler writes as an invocation
ends, which CloudWatch turns into the metrics infra/aws's alarms read."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.airflow.client import Outcome, TriggerResult
from dagtrigger.airflow.retry import RetryPolicy
from dagtrigger.dispatch import Dispatcher
from dagtrigger.errors import ConfigurationError, DagNotFoundError
from dagtrigger.platforms import aws_lambda
from dagtrigger.routing import Router
from tests.standins.aws_lambda import BatchBarrierClient

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "tests" / "events"
ROUTES = [{"dag_id": "d", "match": {"prefix": "in/"}}]
# Two runs created, one duplicate, one refused, one object no route matches.
OBJECT_KEYS = ("in/created-1", "in/created-2", "in/duplicate", "in/missing", "out/elsewhere")


class ScriptedAirflow:
    """Answers by object name: created, a duplicate for in/duplicate, no DAG for in/missing."""

    retry = RetryPolicy(deadline=5.0)

    def trigger(
        self, dag_id: str, dag_run_id: str | None, conf: Mapping[str, Any], **_: Any
    ) -> TriggerResult:
        if conf["name"] == "in/missing":
            raise DagNotFoundError(f"DAG {dag_id!r} does not exist")
        outcome = Outcome.DUPLICATE if conf["name"] == "in/duplicate" else Outcome.CREATED
        return TriggerResult(outcome, dag_id, str(dag_run_id), {}, 1)


def s3_notification() -> dict[str, Any]:
    template = json.loads((EVENTS / "s3_put.json").read_text())["Records"][0]
    records = []
    for key in OBJECT_KEYS:
        record = copy.deepcopy(template)
        record["s3"]["object"]["key"] = key
        records.append(record)
    return {"Records": records}


def invoke_the_handler(times: int) -> None:
    """In a process of its own, as on Lambda: the metrics' settings are read at import.

    Each round is an S3 notification (every kind of count) then an unusable event (Failed only);
    last comes an invocation that meets a configuration error and counts nothing.
    """
    dispatcher = Dispatcher(lambda: Router.from_rules(ROUTES), ScriptedAirflow)  # type: ignore[arg-type]

    def misconfigured() -> Dispatcher:
        raise ConfigurationError("AIRFLOW_URL is not set")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aws_lambda, "get_dispatcher", lambda: dispatcher)
        for _ in range(times):
            for event in (s3_notification(), "not an event"):
                # The refused run and the unusable event fail the invocation: Lambda retries.
                with contextlib.suppress(aws_lambda.EventFailed):
                    aws_lambda.handle(event, None)
        patch.setattr(aws_lambda, "get_dispatcher", misconfigured)
        with contextlib.suppress(ConfigurationError):
            aws_lambda.handle(s3_notification(), None)


def metric_lines(env: dict[str, str], times: int = 1) -> tuple[list[dict[str, Any]], str]:
    """The EMF lines the handler wrote on stdout, without their timestamps, and its stderr."""
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from tests.unit.test_emf import invoke_the_handler; invoke_the_handler({times})",
        ],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in child.stdout.splitlines() if line.startswith('{"_aws"')]
    for line in lines:
        written_at = line["_aws"].pop("Timestamp") / 1000
        assert abs(written_at - time.time()) < 60, "milliseconds since the epoch"
    return lines, child.stderr


def emf_line(namespace: str, service: str | None, counts: dict[str, list[float]]) -> dict[str, Any]:
    """What CloudWatch reads: the namespace, the dimensions, each metric's name, unit and values."""
    directive = {
        "Namespace": namespace,
        "Dimensions": [["service"] if service else []],
        "Metrics": [{"Name": name, "Unit": "Count"} for name in counts],
    }
    line: dict[str, Any] = {"_aws": {"CloudWatchMetrics": [directive]}}
    if service:
        line["service"] = service
    line.update(counts)
    return line


def one_round(namespace: str, service: str | None) -> list[dict[str, Any]]:
    every_kind = {"RunsCreated": [2.0], "Duplicates": [1.0], "Ignored": [1.0], "Failed": [1.0]}
    return [
        emf_line(namespace, service, every_kind),
        emf_line(namespace, service, {"Failed": [1.0]}),
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"POWERTOOLS_SERVICE_NAME": "orders", "POWERTOOLS_METRICS_NAMESPACE": "etl"},
            one_round("etl", "orders"),
        ),
        ({}, one_round("dagtrigger", None)),
        ({"POWERTOOLS_METRICS_DISABLED": "true"}, []),
        ({"POWERTOOLS_DEV": "1"}, []),
        (
            {"POWERTOOLS_DEV": "1", "POWERTOOLS_METRICS_DISABLED": "false"},
            one_round("dagtrigger", None),
        ),
    ],
    ids=["service-and-namespace", "defaults", "disabled", "dev-mode", "dev-mode-enabled"],
)
def test_each_invocation_ends_with_one_line_of_its_own_counts(
    env: dict[str, str], expected: list[dict[str, Any]]
) -> None:
    lines, stderr = metric_lines(env)

    assert lines == expected
    assert "No application metrics" not in stderr, "an invocation that counts nothing is no fault"


def test_disabled_metrics_stay_unwritten_however_long_a_warm_process_lives() -> None:
    lines, _ = metric_lines({"POWERTOOLS_METRICS_DISABLED": "true"}, times=60)

    assert lines == []


def test_every_record_of_a_concurrent_sqs_batch_is_counted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    template = json.loads((EVENTS / "sqs_plain_text.json").read_text())["Records"][0]
    records = [dict(copy.deepcopy(template), messageId=f"message-{i}") for i in range(10)]
    client = BatchBarrierClient(len(records))
    dispatcher = Dispatcher(lambda: Router.single("d"), lambda: client)  # type: ignore[arg-type, return-value]
    monkeypatch.setattr(aws_lambda, "get_dispatcher", lambda: dispatcher)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    capsys.readouterr()

    assert aws_lambda.handle({"Records": records}, None) == {"batchItemFailures": []}

    out = capsys.readouterr().out
    (line,) = [json.loads(text) for text in out.splitlines() if text.startswith('{"_aws"')]
    assert line["RunsCreated"] == [1.0] * len(records)
