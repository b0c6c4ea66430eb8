"""functions/lambda_function.py as Lambda runs it: instances in processes of their own, each run
by awslambdaric against the Runtime API stand-in, into real Airflow 2 and 3."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import airflow_env, count_runs, read_run
from tests.standins._http import LoopbackServer, Request, Response, forward, json_response
from tests.standins.lambda_runtime import LambdaFunction
from tools.local_airflow import REPO, LocalAirflow

pytestmark = pytest.mark.airflow

DAG = "dagtrigger_example"
EVENTS = REPO / "tests" / "events"
S3_PUT = json.loads((EVENTS / "s3_put.json").read_text())["Records"][0]
S3_PUT_CONF = json.loads((EVENTS / "s3_put.expected.json").read_text())["events"][0]["conf"]


def new_object() -> tuple[dict[str, Any], dict[str, Any]]:
    """An S3 notification for an object no other test has seen, and the conf its run gets."""
    key = f"lambda-runtime/{uuid.uuid4().hex}/orders.csv"
    record = copy.deepcopy(S3_PUT)
    record["s3"]["object"]["key"] = key
    conf = {**S3_PUT_CONF, "name": key, "uri": f"s3://acme-raw-eu/{key}"}
    return {"Records": [record]}, conf


class TogetherFront(LoopbackServer):
    """Forwards to Airflow, holding each request that starts a run until `parties` of them are
    held: they all get through only if that many invocations run at the same time."""

    def __init__(self, upstream_url: str, parties: int) -> None:
        super().__init__()
        self.upstream_url = upstream_url
        self.barrier = threading.Barrier(parties, timeout=20)

    def handle(self, request: Request) -> Response:
        if request.method == "POST" and request.path.endswith("/dagRuns"):
            try:
                self.barrier.wait()
            except threading.BrokenBarrierError:
                return json_response(503, {"detail": "held alone"})
        headers = {k: v for k, v in request.headers.items() if k == "authorization"}
        return forward(self.upstream_url, request, headers)


def test_an_s3_event_delivered_twice_at_once_starts_one_run_and_a_later_delivery_is_a_duplicate(
    airflow: LocalAirflow, tmp_path: Path
) -> None:
    event, conf = new_object()
    before = count_runs(airflow, DAG)
    with LambdaFunction(airflow_env(airflow), tmp_path / "lambda.log", instances=2) as function:
        with ThreadPoolExecutor(2) as callers:
            together = list(callers.map(function.invoke, [event, event]))
        later = function.invoke(event)
        logged = function.log_entries()

    assert all(i.ok for i in [*together, later]), [i.error for i in [*together, later]]
    runs = [run for i in [*together, later] for run in i.payload["runs"]]
    run_id = runs[0]["dag_run_id"]
    assert {run["dag_run_id"] for run in runs} == {run_id}
    # Both deliveries at once may answer "created": Airflow 2 on SQLite answers 500 to the
    # second insert, and the conflict on its retry may be the retried request's own run.
    assert "created" in [run["outcome"] for run in runs[:2]]
    assert {run["outcome"] for run in runs[:2]} <= {"created", "duplicate"}
    assert later.payload["runs"] == [{"dag_id": DAG, "dag_run_id": run_id, "outcome": "duplicate"}]
    assert count_runs(airflow, DAG) == before + 1
    stored = read_run(airflow, DAG, run_id)
    assert stored is not None and stored["conf"] == conf
    later_lines = [e for e in logged if e.get("xray_trace_id") == later.trace_id]
    assert [e.get("outcome") for e in later_lines if "outcome" in e] == ["duplicate"]


@pytest.mark.parametrize(
    ("setting", "error_type", "named"),
    [
        ({"DAGTRIGGER_DEADLINE": "soon"}, "ConfigurationError", "DAGTRIGGER_DEADLINE"),
        ({"DAG_ID": "no_such_dag"}, "EventFailed", "'no_such_dag'"),
    ],
    ids=["bad-setting", "missing-dag"],
)
def test_a_configuration_error_fails_the_invocation_and_the_retried_event_starts_its_run(
    airflow: LocalAirflow, tmp_path: Path, setting: dict[str, str], error_type: str, named: str
) -> None:
    event, conf = new_object()
    log = tmp_path / "lambda.log"
    before = count_runs(airflow, DAG)
    with LambdaFunction(airflow_env(airflow, **setting), log) as misconfigured:
        failed = misconfigured.invoke(event)

    assert not failed.ok, "a function error: Lambda retries the event, then keeps it aside"
    assert failed.error_type == error_type
    assert named in str(failed.error_message)
    assert count_runs(airflow, DAG) == before

    with LambdaFunction(airflow_env(airflow), log) as fixed:
        retried = fixed.invoke(event)

    assert retried.ok, retried.error
    [run] = retried.payload["runs"]
    assert run["outcome"] == "created"
    stored = read_run(airflow, DAG, run["dag_run_id"])
    assert stored is not None and stored["conf"] == conf
    assert count_runs(airflow, DAG) == before + 1


def test_two_invocations_held_together_run_in_two_processes_at_once(
    airflow: LocalAirflow, tmp_path: Path
) -> None:
    events = [new_object()[0] for _ in range(2)]
    with (
        TogetherFront(airflow.url, parties=2) as front,
        LambdaFunction(
            airflow_env(airflow, AIRFLOW_URL=front.url), tmp_path / "lambda.log", instances=2
        ) as function,
    ):
        pids = function.pids
        with ThreadPoolExecutor(2) as callers:
            first, second = callers.map(function.invoke, events)

    assert first.ok and second.ok, (first.error, second.error)
    assert [first.payload["runs"][0]["outcome"], second.payload["runs"][0]["outcome"]] == [
        "created",
        "created",
    ]
    assert not front.barrier.broken, "each run's request waited for the other's"
    assert {first.pid, second.pid} == set(pids) and len(pids) == 2
    assert first.taken_at < second.answered_at and second.taken_at < first.answered_at
