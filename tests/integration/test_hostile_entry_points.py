"""The hostile corpus (tests/hostile/) at the real entry points, into real Airflow 2 and 3.

Cloud Functions: every input is POSTed to functions-framework serving functions/main.py, as a
structured and a binary CloudEvent when it is one, else as the raw body (garbage, non-UTF-8
bytes, 10 MB). The answer is the one in the corpus table: 200 when dagtrigger handled it (one
ERROR line naming the problem for an unusable event; a run whose conf holds the exact object
name for an accepted one), or functions-framework's own 400/500 before dagtrigger is called —
never a 500 of dagtrigger's, which would be a transient failure.

Lambda: the corpus inside SQS batches (poison records are acknowledged, valid ones start runs)
and as direct invocations (an unusable event raises EventFailed and reaches no Airflow).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dagtrigger import runtime
from dagtrigger.events import normalise_sqs_record
from dagtrigger.run_id import build_dag_run_id
from tests.hostile import CORPUS, TEN_MB, Expected, parsed, read
from tests.integration.functions_server import FunctionsServer
from tests.integration.helpers import airflow_env, read_run
from tests.records import Records, json_log_lines
from tests.standins.aws_lambda import LambdaContext, sqs_record
from tools.local_airflow import REPO, LocalAirflow

pytestmark = pytest.mark.airflow

GCF_DAG = "dagtrigger_example"
LAMBDA_DAG = "dagtrigger_sales"
CLOUDEVENT_ATTRIBUTES = ("specversion", "id", "source", "type", "time")


# --- Cloud Functions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    name: str  # the corpus entry
    mode: str  # "structured", "binary" or "raw"

    @property
    def id(self) -> str:
        return f"{self.name}-{self.mode}"

    def request(self) -> tuple[bytes, dict[str, str]]:
        body = read(self.name)
        if self.mode == "raw":
            return body, {"Content-Type": "application/json"}
        if self.mode == "structured":
            return body, {"Content-Type": "application/cloudevents+json"}
        event = parsed(self.name)
        headers = {f"ce-{key}": event[key] for key in CLOUDEVENT_ATTRIBUTES if key in event}
        headers["Content-Type"] = "application/json"
        return json.dumps(event["data"]).encode(), headers


def _cloud_event(name: str) -> dict[str, Any] | None:
    try:
        event = parsed(name)
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) and "specversion" in event else None


def _deliveries() -> list[Delivery]:
    deliveries = []
    for name, expected in sorted(CORPUS.items()):
        if expected.gcf is None:
            continue  # an AWS shape
        event = _cloud_event(name)
        if event is None:
            deliveries.append(Delivery(name, "raw"))
            continue
        deliveries.append(Delivery(name, "structured"))
        required = all(isinstance(event.get(k), str) for k in CLOUDEVENT_ATTRIBUTES[:4])
        if required and "data" in event:  # binary mode has no room for data_base64 or a number
            deliveries.append(Delivery(name, "binary"))
    return deliveries


DELIVERIES = _deliveries()


@pytest.fixture(scope="module")
def functions() -> Iterator[tuple[ExitStack, dict[str, FunctionsServer]]]:
    with ExitStack() as stack:
        yield stack, {}


@pytest.fixture
def function(
    airflow: LocalAirflow,
    functions: tuple[ExitStack, dict[str, FunctionsServer]],
    tmp_path_factory: pytest.TempPathFactory,
) -> FunctionsServer:
    """One functions-framework per Airflow version, shared by every delivery."""
    stack, started = functions
    if airflow.major not in started:
        env = airflow_env(airflow, DAG_ID=GCF_DAG, DAGTRIGGER_DEADLINE="3")
        log = tmp_path_factory.mktemp(f"gcf{airflow.major}") / "function.log"
        started[airflow.major] = stack.enter_context(
            FunctionsServer("handle_cloud_event", env, log)
        )
    return started[airflow.major]


def post(function: FunctionsServer, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST a body as it is; the status and everything the function printed meanwhile."""
    offset = function.log_path.stat().st_size
    request = urllib.request.Request(function.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    with open(function.log_path, "rb") as log:
        log.seek(offset)
        return status, log.read().decode("utf-8", "replace")


def dagtrigger_lines(output: str) -> list[dict[str, Any]]:
    """The structured lines dagtrigger printed (Cloud Logging's format)."""
    return json_log_lines(output, "severity")


def assert_no_dagtrigger_traceback(output: str) -> None:
    assert "/dagtrigger/" not in output or "Traceback" not in output, output[-3000:]


def assert_run_holds(airflow: LocalAirflow, dag_id: str, run_id: str, expected: Expected) -> None:
    run = read_run(airflow, dag_id, run_id)
    assert run is not None, f"no run {run_id}"
    if expected.name is not None:
        assert run["conf"]["name"] == expected.name
        assert run["conf"]["uri"].endswith("/" + expected.name)


@pytest.mark.parametrize("delivery", DELIVERIES, ids=lambda d: d.id)
def test_cloud_functions_answer_each_hostile_body_as_the_table_says(
    airflow: LocalAirflow, function: FunctionsServer, delivery: Delivery
) -> None:
    expected = CORPUS[delivery.name]
    assert expected.gcf is not None

    status, output = post(function, *delivery.request())

    lines = dagtrigger_lines(output)
    assert status == expected.gcf.status, output[-3000:]
    assert_no_dagtrigger_traceback(output)
    if status != 200:  # functions-framework refused the body: dagtrigger was never called
        assert lines == [], lines
        return
    errors = [line for line in lines if line["severity"] == "ERROR"]
    if expected.outcome == "accepted":
        assert errors == []
        (run,) = [line for line in lines if "dag_run_id" in line]
        assert run["outcome"] in ("created", "duplicate")  # binary mode repeats structured
        assert_run_holds(airflow, GCF_DAG, run["dag_run_id"], expected)
        if delivery.name == "pubsub_cloudevent_data_with_shell_and_traversal.json":
            stored = read_run(airflow, GCF_DAG, run["dag_run_id"])
            assert stored is not None and stored["conf"]["data"]["cmd"] == "$(reboot)"
            assert stored["conf"]["attributes"]["origin"] == "'; DROP TABLE dag_run; --"
    else:
        (error,) = errors
        assert error["outcome"] == ("rejected" if expected.outcome == "rejected" else "failed")
        assert (expected.gcf.message or expected.message) in error["message"]
        assert "\n" not in error["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        pytest.param(b"\x00\xff" * (TEN_MB // 2), "application/json", 400, id="10mb-nul-ff"),
        pytest.param(b"{" * TEN_MB, "application/cloudevents+json", 400, id="10mb-of-braces"),
        pytest.param(b"", "application/cloudevents+json", 400, id="empty-structured"),
    ],
)
def test_raw_garbage_is_refused_by_functions_framework_before_dagtrigger(
    airflow: LocalAirflow, function: FunctionsServer, body: bytes, content_type: str, status: int
) -> None:
    answered, output = post(function, body, {"Content-Type": content_type})

    assert answered == status, output[-2000:]
    assert dagtrigger_lines(output) == []
    assert_no_dagtrigger_traceback(output)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # cloudevents' json.loads(bytes) raises UnicodeDecodeError inside functions-framework
        pytest.param(b"\xc3\x28\xa0\xa1", "application/cloudevents+json", id="bad-utf8-ce"),
        pytest.param("caf\xe9".encode("latin-1"), "application/json", id="latin1-json"),
    ],
)
def test_a_body_that_is_not_utf8_is_acknowledged_as_unusable(
    airflow: LocalAirflow, function: FunctionsServer, body: bytes, content_type: str
) -> None:
    answered, output = post(function, body, {"Content-Type": content_type, "ce-id": "e-1"})

    assert answered == 200, output[-2000:]
    (line,) = dagtrigger_lines(output)
    assert (line["severity"], line["outcome"], line["event_id"]) == ("ERROR", "rejected", "e-1")
    assert "the request body is not UTF-8 text" in line["message"], line
    assert_no_dagtrigger_traceback(output)


# --- Lambda --------------------------------------------------------------------------------------


@pytest.fixture
def lambda_handler(
    airflow: LocalAirflow, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Callable[[Any, Any], Any], Records]]:
    for name in ("DAGTRIGGER_ROUTES", "AIRFLOW_AUTH", "MWAA_ENVIRONMENT", "AIRFLOW_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in airflow_env(airflow, DAG_ID=LAMBDA_DAG, DAGTRIGGER_DEADLINE="3").items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(REPO / "functions"))
    import lambda_function

    records = Records()
    logger = logging.getLogger("dagtrigger")
    logger.addHandler(records)
    runtime.reset()
    try:
        yield lambda_function.handler, records
    finally:
        runtime.reset()
        logger.removeHandler(records)


def _carried_by_sqs(payload: Any) -> bool:
    """An S3 notification or EventBridge event: what an SQS body carries rather than is."""
    if not isinstance(payload, dict):
        return False
    records = payload.get("Records")
    if isinstance(records, list):
        return any(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records)
    return "detail-type" in payload and "source" in payload


@dataclass(frozen=True)
class SqsCase:
    record: dict[str, Any]
    expected: Expected
    source: str  # the corpus entry


def _sqs_cases() -> list[SqsCase]:
    cases = []
    for name, expected in sorted(CORPUS.items()):
        try:
            payload = parsed(name)
        except (ValueError, RecursionError):
            continue
        records = payload.get("Records") if isinstance(payload, dict) else None
        if isinstance(records, list) and records and records[0].get("eventSource") == "aws:sqs":
            cases.extend(SqsCase(record, expected, name) for record in records)
        elif _carried_by_sqs(payload) and "NaN" not in read(name).decode():
            record = sqs_record(f"hostile-{Path(name).stem}", read(name).decode())
            cases.append(SqsCase(record, expected, name))
    # Garbage text is not poison for SQS: a body is any text, and a plain message is one.
    garbage = read("garbage_text.bin").decode()
    cases.append(
        SqsCase(sqs_record("hostile-garbage", garbage), Expected("text", "accepted"), "text")
    )
    return cases


def test_sqs_batches_acknowledge_poison_records_and_run_the_valid_ones(
    airflow: LocalAirflow, lambda_handler: tuple[Callable[[Any, Any], Any], Records]
) -> None:
    handler, logs = lambda_handler
    cases = _sqs_cases()

    answers = [
        handler({"Records": [case.record for case in cases[start : start + 10]]}, LambdaContext())
        for start in range(0, len(cases), 10)
    ]

    assert answers == [{"batchItemFailures": []}] * len(answers), "no record is worth a retry"
    errors = [
        (getattr(record, "outcome", None), record.getMessage())
        for record in logs.records
        if record.levelno >= logging.ERROR
    ]
    for case in cases:
        expected = case.expected
        if expected.outcome == "accepted":
            (event,) = normalise_sqs_record(case.record).events
            stored = read_run(airflow, LAMBDA_DAG, build_dag_run_id(event))
            assert stored is not None, f"no run for {case.source}"
            if expected.name is not None:
                assert stored["conf"]["name"] == expected.name
            else:
                assert stored["conf"]["data"] == json_or_text(case.record["body"])
        elif expected.outcome in ("rejected", "refused"):
            outcome = "rejected" if expected.outcome == "rejected" else "failed"
            assert [m for o, m in errors if o == outcome and expected.message in m], case.source
    poison = sum(case.expected.outcome in ("rejected", "refused") for case in cases)
    assert len(errors) == poison, errors


def json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


@pytest.mark.parametrize(
    "name",
    [name for name in sorted(CORPUS) if name.endswith(".json") and not name.startswith("sqs_")],
)
def test_direct_invocations_raise_event_failed_or_start_the_run(
    airflow: LocalAirflow, lambda_handler: tuple[Callable[[Any, Any], Any], Records], name: str
) -> None:
    from dagtrigger.platforms.aws_lambda import EventFailed

    handler, logs = lambda_handler
    expected = CORPUS[name]
    event = parsed(name)

    if expected.outcome in ("rejected", "refused"):
        with pytest.raises(EventFailed) as failed:
            handler(event, LambdaContext())
        assert expected.message in str(failed.value) or isinstance(event, str)
        assert [r for r in logs.records if r.levelno == logging.ERROR], "logged, too"
        return
    answer = handler(event, LambdaContext())
    if expected.outcome == "ignored":
        assert answer["runs"] == [] and answer["ignored"]
        return
    (run,) = answer["runs"]
    assert run["outcome"] in ("created", "duplicate")
    assert_run_holds(airflow, LAMBDA_DAG, run["dag_run_id"], expected)
