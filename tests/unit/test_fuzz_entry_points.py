"""Property-based fuzzing of every normaliser and of both platform adapters, in process.

Inputs: arbitrary JSON values (NaN, lone surrogates and all), arbitrary bytes, and mutations of
the golden payloads in tests/events/. Each normaliser answers `Normalised` or `EventError`; the
planner never raises; the adapters classify with a stubbed Airflow client that records calls:

- Cloud Functions (`handle_cloud_event`, `handle_background_event`): an unusable event is logged
  at ERROR (outcome "rejected") and acknowledged (the handler returns);
- Lambda, direct invocation: an unusable event raises `EventFailed`, nothing else;
- Lambda, SQS batch: a poison record is logged and acknowledged (never in batchItemFailures).

The hostile corpus (tests/hostile/) goes through both adapters too, with its expected outcomes.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagtrigger.airflow.client import TriggerResult
from dagtrigger.airflow.retry import RetryPolicy
from dagtrigger.cli import main as cli_main
from dagtrigger.dispatch import Dispatcher, plan_events
from dagtrigger.errors import EventError
from dagtrigger.events import (
    Normalised,
    normalise,
    normalise_background,
    normalise_cloudevent,
    normalise_sqs_record,
)
from dagtrigger.events.payload import load_json
from dagtrigger.platforms import aws_lambda, cloud_functions
from dagtrigger.routing import Router
from tests.hostile import CORPUS, Gcf, parsed, read
from tests.records import Records
from tests.standins.aws_lambda import LambdaContext

RUN_ID = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
GOLDEN_DIR = Path(__file__).resolve().parents[1] / "events"
GOLDEN = [
    json.loads(p.read_text(encoding="utf-8"))
    for p in sorted(GOLDEN_DIR.glob("*.json"))
    if not p.name.endswith(".expected.json")
]
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ROUTER = Router.single("d")
NO_GCF = Gcf(0)


def safe_run_id(run_id: str) -> bool:
    """What Airflow 2 and 3 accept: the default pattern, 250 characters, and (3) no '..'."""
    return bool(RUN_ID.match(run_id)) and len(run_id) <= 250 and ".." not in run_id


# --- a dispatcher whose Airflow is a recorder ---------------------------------------------------


@dataclass
class RecordingClient:
    """Stands in for AirflowClient: every trigger is recorded and 'created'."""

    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(deadline=1.0))
    calls: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    def trigger(
        self,
        dag_id: str,
        dag_run_id: str | None,
        conf: Any,
        *,
        note: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> TriggerResult:
        self.calls.append((dag_id, dag_run_id, dict(conf)))
        return TriggerResult("created", dag_id, str(dag_run_id), {"state": "queued"}, 1)


class DagtriggerRecords(Records):
    """Every record the 'dagtrigger' logger emits (powertools' on Lambda)."""

    def rejected(self) -> list[logging.LogRecord]:
        return [
            r
            for r in self.records
            if r.levelno == logging.ERROR and getattr(r, "outcome", None) == "rejected"
        ]


class CloudLines:
    """What the Cloud Functions adapter wrote to stdout, one Cloud Logging JSON object a line."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def errors(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["severity"] == "ERROR"]

    def rejected(self) -> list[dict[str, Any]]:
        return [line for line in self.errors() if line.get("outcome") == "rejected"]


@dataclass
class Harness:
    client: RecordingClient
    logs: DagtriggerRecords
    gcf: CloudLines

    def reset(self) -> None:
        self.client.calls.clear()
        self.logs.records.clear()
        self.gcf.stream.seek(0)
        self.gcf.stream.truncate()

    def assert_calls_sound(self) -> None:
        for dag_id, run_id, conf in self.client.calls:
            assert dag_id == "d"
            assert run_id is not None and safe_run_id(run_id), run_id
            json.dumps(conf, allow_nan=False, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    client = RecordingClient()
    dispatcher = Dispatcher(lambda: ROUTER, lambda: client)  # type: ignore[arg-type, return-value]
    logs = DagtriggerRecords()
    gcf = CloudLines()
    dagtrigger_logger = logging.getLogger("dagtrigger")
    stdout = cloud_functions.configure_logging()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cloud_functions, "get_dispatcher", lambda: dispatcher)
        patch.setattr(aws_lambda, "get_dispatcher", lambda: dispatcher)
        dagtrigger_logger.addHandler(logs)
        previous = stdout.setStream(gcf.stream)
        try:
            yield Harness(client, logs, gcf)
        finally:
            stdout.setStream(previous)
            dagtrigger_logger.removeHandler(logs)


@dataclass(frozen=True)
class FakeCloudEvent:
    """What functions-framework hands the function: attributes and data, already parsed."""

    attributes: dict[str, Any]
    data: Any

    def get_attributes(self) -> dict[str, Any]:
        return self.attributes

    def get_data(self) -> Any:
        return self.data


KEYS = st.sampled_from(
    [
        "Records", "eventSource", "EventSource", "aws:s3", "aws:sqs", "aws:sns", "s3", "bucket",
        "object", "key", "name", "size", "generation", "metageneration", "metadata", "body",
        "messageId", "message", "subscription", "data", "data_base64", "attributes",
        "messageAttributes", "context", "resource", "eventType", "eventId", "event_type",
        "specversion", "type", "id", "time", "detail-type", "source", "detail", "resources",
        "Sns", "Message", "MessageId", "Type", "TopicArn", "Event", "sequencer", "versionId",
    ]
)  # fmt: skip
TEXT = st.text(max_size=12) | st.sampled_from(
    [
        "google.cloud.storage.object.v1.finalized",
        "google.cloud.storage.object.v1.metadataUpdated",
        "google.cloud.pubsub.topic.v1.messagePublished",
        "google.storage.object.finalize",
        "google.pubsub.topic.publish",
        "projects/_/buckets/b/objects/o",
        "aws:s3", "aws:sqs", "aws:sns", "aws.s3", "Object Created", "Notification",
        "s3:TestEvent", "ObjectCreated:Put", "e30=", "//79", "\ud800", "NaN", "[]", "{}",
        '{"Records": [{"eventSource": "aws:s3"}]}', "$(reboot)", "../../etc/passwd",
    ]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=24,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _replace(root: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    if new is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return root


_DELETE = object()


@st.composite
def mutated_golden(draw: st.DrawFn) -> Any:
    """A golden payload with one to three nodes deleted, retyped, or replaced by hostile text.

    Embedded payloads are hit too: JSON text inside a string (SQS bodies, SNS messages) and
    base64 (Pub/Sub data) are replaced by mutated or non-UTF-8 encodings.
    """
    payload = copy.deepcopy(draw(st.sampled_from(GOLDEN)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(list(_paths(payload))))
        replacements = [JSON_VALUES, TEXT, st.binary(max_size=16).map(_b64)]
        if path:
            replacements.append(st.just(_DELETE))
        if path and isinstance(path[-1], str):  # e.g. an SQS body carrying another event
            replacements.append(st.sampled_from(GOLDEN).map(json.dumps))
        new = draw(st.one_of(replacements))
        payload = _replace(payload, path, new)
    return payload


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


CLOUDEVENT_ATTRIBUTES = st.fixed_dictionaries(
    {"type": TEXT, "id": TEXT}, optional={"time": TEXT, "source": TEXT, "subject": TEXT}
) | st.dictionaries(KEYS, JSON_VALUES, max_size=4)
CLOUDEVENT_DATA = JSON_VALUES | st.binary(max_size=64) | st.text(max_size=64)
BACKGROUND_CONTEXT = st.fixed_dictionaries(
    {"eventType": TEXT, "eventId": TEXT}, optional={"resource": JSON_VALUES, "timestamp": TEXT}
) | st.dictionaries(KEYS, JSON_VALUES, max_size=4)
SQS_RECORDS = st.fixed_dictionaries(
    {"eventSource": st.just("aws:sqs")},
    optional={
        "messageId": TEXT | JSON_VALUES,
        "body": TEXT | JSON_VALUES | st.builds(json.dumps, JSON_VALUES),
        "attributes": JSON_VALUES,
        "messageAttributes": JSON_VALUES,
        "receiptHandle": TEXT,
    },
)


# --- the normalisers ----------------------------------------------------------------------------


def outcome_of(call: Callable[[], Normalised]) -> Normalised | EventError:
    """Normalised or EventError, and nothing else; the plan of what came out never raises."""
    try:
        normalised = call()
    except EventError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 1000, message[:200]
        return exc
    assert isinstance(normalised, Normalised)
    plan = plan_events(normalised, ROUTER)
    for run in plan.runs:
        assert safe_run_id(run.dag_run_id), run.dag_run_id
        json.dumps(run.conf, allow_nan=False, ensure_ascii=False).encode()
    for error in plan.route_errors:
        assert "\n" not in str(error)
    return normalised


@FUZZ
@given(JSON_VALUES)
def test_any_json_value_through_every_normaliser(value: Any) -> None:
    outcome_of(lambda: normalise(value))
    outcome_of(lambda: normalise_sqs_record(value))
    outcome_of(lambda: normalise_background(value, value))
    outcome_of(lambda: normalise_cloudevent(value, value))
    outcome_of(lambda: normalise({"Records": [value]}))
    outcome_of(lambda: normalise({"message": value, "subscription": "s"}))


STORAGE_EVENT = {"type": "google.cloud.storage.object.v1.finalized", "id": "1"}
PUBSUB_EVENT = {"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "1"}
LEGACY_CONTEXT = {
    "eventType": "google.storage.object.finalize",
    "eventId": "1",
    "resource": "projects/_/buckets/b/objects/o",
}


@FUZZ
@given(st.binary(max_size=256))
def test_any_bytes_through_every_normaliser_that_takes_bytes(raw: bytes) -> None:
    text = raw.decode("utf-8", "replace")
    outcome_of(lambda: normalise(raw))
    outcome_of(lambda: normalise_cloudevent(STORAGE_EVENT, raw))
    outcome_of(lambda: normalise_cloudevent(PUBSUB_EVENT, raw))
    outcome_of(lambda: normalise_background(raw, LEGACY_CONTEXT))
    outcome_of(lambda: normalise_sqs_record({"messageId": "m", "body": text}))
    outcome_of(lambda: normalise(bytearray(raw)))


@FUZZ
@given(mutated_golden())
def test_mutated_golden_payloads_through_every_normaliser(payload: Any) -> None:
    outcome_of(lambda: normalise(payload))
    outcome_of(lambda: normalise(json.dumps(payload).encode()))
    if not isinstance(payload, dict):
        return
    context = payload.get("context", payload)
    outcome_of(lambda: normalise_cloudevent(payload, payload.get("data")))
    outcome_of(lambda: normalise_background(payload.get("data"), context))
    records = payload.get("Records")
    for record in records if isinstance(records, list) else []:
        outcome_of(lambda record=record: normalise_sqs_record(record))


@FUZZ
@given(CLOUDEVENT_ATTRIBUTES, CLOUDEVENT_DATA)
def test_cloudevent_attributes_and_data_of_any_kind(attributes: Any, data: Any) -> None:
    outcome_of(lambda: normalise_cloudevent(attributes, data))


@FUZZ
@given(CLOUDEVENT_DATA, BACKGROUND_CONTEXT)
def test_background_data_and_context_of_any_kind(data: Any, context: Any) -> None:
    outcome_of(lambda: normalise_background(data, context))


@FUZZ
@given(SQS_RECORDS)
def test_sqs_records_of_any_kind(record: Any) -> None:
    outcome_of(lambda: normalise_sqs_record(record))


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def event_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli") / "event"


def assert_plan_exits_cleanly(
    event_file: Path, capsysbinary: pytest.CaptureFixture[bytes], content: bytes
) -> None:
    """`dagtrigger plan`: exit 0 or 2, one error line on stderr for 2, never a traceback."""
    event_file.write_bytes(content)
    capsysbinary.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("DAGTRIGGER_ROUTES", "AIRFLOW_URL", "DAGTRIGGER_MAX_CONF_BYTES"):
            patch.delenv(variable, raising=False)
        patch.setenv("DAG_ID", "d")
        try:
            code = cli_main(["plan", str(event_file)])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    out, err = capsysbinary.readouterr()
    lines = err.decode("utf-8").splitlines()
    assert code in (0, 2), (code, lines)
    assert all(line.startswith("dagtrigger: ") for line in lines), lines
    errors = [line for line in lines if line.startswith("dagtrigger: error: ")]
    assert len(errors) == (1 if code == 2 else 0), lines
    for line in out.decode().splitlines():
        run = load_json(line)  # strict JSON: a NaN printed here would reach Airflow as well
        assert safe_run_id(run["dag_run_id"])


@FUZZ
@given(st.binary(max_size=200) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_cli_plan_of_any_bytes_or_json(
    event_file: Path, capsysbinary: pytest.CaptureFixture[bytes], content: bytes
) -> None:
    assert_plan_exits_cleanly(event_file, capsysbinary, content)


@FUZZ
@given(mutated_golden())
def test_cli_plan_of_mutated_golden_payloads(
    event_file: Path, capsysbinary: pytest.CaptureFixture[bytes], payload: Any
) -> None:
    assert_plan_exits_cleanly(event_file, capsysbinary, json.dumps(payload).encode())


# --- Cloud Functions adapter --------------------------------------------------------------------


def assert_gcf_classified(harness: Harness, expected: Normalised | EventError) -> None:
    """Acknowledged (no exception); rejected events leave exactly one ERROR line saying so."""
    rejected = harness.gcf.rejected()
    if isinstance(expected, EventError):
        assert len(rejected) == 1 and harness.client.calls == []
        assert str(expected) in rejected[0]["message"]
        assert rejected[0]["message"].startswith("unusable event, acknowledged: ")
    else:
        assert rejected == []
        harness.assert_calls_sound()


@FUZZ
@given(CLOUDEVENT_ATTRIBUTES, CLOUDEVENT_DATA)
def test_gcf_cloud_events_of_any_kind_are_acknowledged_or_run(
    harness: Harness, attributes: Any, data: Any
) -> None:
    harness.reset()
    expected = outcome_of(lambda: normalise_cloudevent(attributes, data))

    assert cloud_functions.handle_cloud_event(FakeCloudEvent(attributes, data)) is None

    assert_gcf_classified(harness, expected)


@FUZZ
@given(mutated_golden())
def test_gcf_mutated_structured_cloudevents(harness: Harness, payload: Any) -> None:
    if not isinstance(payload, dict):
        return
    harness.reset()
    attributes = {k: v for k, v in payload.items() if k not in ("data", "data_base64")}
    data = payload.get("data")
    expected = outcome_of(lambda: normalise_cloudevent(attributes, data))

    cloud_functions.handle_cloud_event(FakeCloudEvent(attributes, data))

    assert_gcf_classified(harness, expected)


@FUZZ
@given(CLOUDEVENT_DATA, BACKGROUND_CONTEXT | JSON_VALUES)
def test_gcf_background_events_of_any_kind(harness: Harness, data: Any, context: Any) -> None:
    harness.reset()
    cloud_functions.handle_background_event(data, context)
    harness.assert_calls_sound()
    assert len(harness.gcf.rejected()) <= 1


# --- Lambda adapter -----------------------------------------------------------------------------


def lambda_outcome(event: Any) -> dict[str, Any] | aws_lambda.EventFailed:
    try:
        answer = aws_lambda.handle(event, LambdaContext())
    except aws_lambda.EventFailed as exc:
        assert str(exc)
        return exc
    assert isinstance(answer, dict)
    return answer


def is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def is_poison(record: Any) -> bool:
    return isinstance(outcome_of(lambda: normalise_sqs_record(record)), EventError)


def assert_lambda_classified(harness: Harness, event: Any) -> None:
    harness.reset()
    answer = lambda_outcome(event)
    harness.assert_calls_sound()
    if is_sqs_batch(event):
        # Airflow never failed, so nothing is worth a redelivery: poison records are acknowledged.
        assert answer == {"batchItemFailures": []}
        poison = [record for record in event["Records"] if is_poison(record)]
        assert len(harness.logs.rejected()) == len(poison)
    elif isinstance(outcome_of(lambda: normalise(event)), EventError):
        assert isinstance(answer, aws_lambda.EventFailed)
        assert harness.client.calls == []


@FUZZ
@given(JSON_VALUES)
def test_lambda_any_json_value(harness: Harness, event: Any) -> None:
    assert_lambda_classified(harness, event)


@FUZZ
@given(mutated_golden())
def test_lambda_mutated_golden_events(harness: Harness, event: Any) -> None:
    assert_lambda_classified(harness, event)


SQS_CARRYING_GOLDEN = mutated_golden().map(
    lambda payload: {"eventSource": "aws:sqs", "messageId": "m", "body": json.dumps(payload)}
)


@settings(FUZZ, max_examples=40)
@given(st.lists(SQS_RECORDS | SQS_CARRYING_GOLDEN, min_size=1, max_size=10))
def test_lambda_sqs_batches_acknowledge_every_poison_record(
    harness: Harness, records: list[dict[str, Any]]
) -> None:
    assert_lambda_classified(harness, {"Records": records})


# --- the hostile corpus through both adapters ---------------------------------------------------


def corpus_events() -> list[str]:
    names = []
    for name in sorted(CORPUS):
        try:
            read(name).decode("utf-8")
            parsed(name)
        except (ValueError, RecursionError):
            continue
        names.append(name)
    return names


def strict_json(name: str) -> bool:
    try:
        load_json(read(name))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("name", corpus_events())
def test_lambda_with_the_corpus(harness: Harness, name: str) -> None:
    expected = CORPUS[name]
    event = parsed(name)
    harness.reset()

    answer = lambda_outcome(event)

    errors = [r for r in harness.logs.records if r.levelno >= logging.ERROR]
    if is_sqs_batch(event):
        assert answer == {"batchItemFailures": []}, "a poison record is acknowledged"
        if expected.outcome in ("rejected", "refused"):
            assert len(errors) == 1 and expected.message in errors[0].getMessage()
    elif not strict_json(name):  # NaN parsed by Python: usable, but not as a conf
        assert isinstance(answer, aws_lambda.EventFailed)
        assert "cannot be sent as JSON" in str(answer)
    elif expected.outcome in ("rejected", "refused"):
        assert isinstance(answer, aws_lambda.EventFailed)
        assert expected.message in str(answer) or isinstance(event, str)
        assert len(errors) == 1
    else:
        assert isinstance(answer, dict), answer
        outcomes = [run["outcome"] for run in answer["runs"]]
        assert outcomes == (["created"] if expected.outcome == "accepted" else [])
    if expected.name is not None:
        assert [conf["name"] for _, _, conf in harness.client.calls] == [expected.name]
    harness.assert_calls_sound()


GCF_HANDLED = [n for n in corpus_events() if (CORPUS[n].gcf or NO_GCF).status == 200]


@pytest.mark.parametrize("name", GCF_HANDLED)
def test_gcf_with_the_corpus(harness: Harness, name: str) -> None:
    expected = CORPUS[name]
    payload = parsed(name)
    harness.reset()
    if "specversion" in payload:
        attributes = {k: v for k, v in payload.items() if k not in ("data", "data_base64")}
        cloud_functions.handle_cloud_event(FakeCloudEvent(attributes, payload.get("data")))
    else:
        cloud_functions.handle_background_event(payload.get("data"), payload.get("context"))

    errors = harness.gcf.errors()
    if expected.outcome == "accepted":
        assert errors == [] and len(harness.client.calls) == 1
        if expected.name is not None:
            assert harness.client.calls[0][2]["name"] == expected.name
    else:
        assert len(errors) == 1 and harness.client.calls == []
        assert expected.message in errors[0]["message"]
        assert errors[0].get("outcome") == (
            "rejected" if expected.outcome == "rejected" else "failed"
        )
    harness.assert_calls_sound()


def test_lambda_logs_survive_a_lone_surrogate_in_the_event(harness: Harness) -> None:
    # Lambda's stdout is strict UTF-8: one unencodable character used to drop the whole line.
    event = json.loads((GOLDEN_DIR / "eventbridge_custom.json").read_text())
    event["id"] = "half\ud800pair"
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    handler = aws_lambda.logger.logger_handler
    previous = handler.setStream(stdout)  # type: ignore[attr-defined]
    try:
        answer = lambda_outcome(event)
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    stdout.buffer.seek(0)
    lines = [json.loads(line) for line in stdout.buffer.read().decode().splitlines()]

    assert isinstance(answer, aws_lambda.EventFailed)
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert error["event_id"] == "half\ud800pair" and "not valid Unicode" in error["message"]
