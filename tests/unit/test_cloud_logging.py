"""Cloud Functions logs: one JSON object per line with the fields Cloud Logging indexes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagtrigger.airflow.client import Outcome, TriggerResult
from dagtrigger.airflow.retry import RetryPolicy
from dagtrigger.dispatch import Dispatcher
from dagtrigger.platforms import cloud_functions
from dagtrigger.platforms.cloud_functions import CloudLoggingFormatter
from dagtrigger.routing import Router

EVENTS = Path(__file__).resolve().parent.parent / "events"


@contextmanager
def stdout_as(stream: TextIO) -> Iterator[None]:
    handler = cloud_functions.configure_logging()
    previous = handler.stream
    handler.setStream(stream)
    try:
        yield
    finally:
        handler.setStream(previous)


def _format(level: int, message: str, **fields: object) -> dict[str, object]:
    record = logging.LogRecord("dagtrigger", level, __file__, 1, message, None, None)
    for name, value in fields.items():
        setattr(record, name, value)
    return json.loads(CloudLoggingFormatter().format(record))  # type: ignore[no-any-return]


def test_a_run_outcome_carries_severity_and_the_run_fields() -> None:
    entry = _format(
        logging.INFO,
        "created run r of DAG d",
        event_id="e1",
        dag_id="d",
        dag_run_id="r",
        outcome="created",
    )
    assert entry["severity"] == "INFO"
    assert entry["message"] == "created run r of DAG d"
    assert (entry["event_id"], entry["dag_id"], entry["dag_run_id"], entry["outcome"]) == (
        "e1",
        "d",
        "r",
        "created",
    )


def test_errors_are_error_severity_and_unset_fields_are_left_out() -> None:
    entry = _format(logging.ERROR, "failed", event_id="e2")
    assert entry["severity"] == "ERROR"
    assert "dag_id" not in entry and "dag_run_id" not in entry


def test_unknown_record_attributes_never_reach_the_log() -> None:
    entry = _format(logging.INFO, "x", password="hunter2", authorization="Bearer abc")
    assert "hunter2" not in json.dumps(entry) and "Bearer" not in json.dumps(entry)


def test_the_line_is_the_json_cloud_logging_reads() -> None:
    record = logging.LogRecord("dagtrigger", logging.INFO, __file__, 1, "café %s", ("ok",), None)
    record.event_id, record.retry, record.route = "e1", 2, None

    assert CloudLoggingFormatter().format(record) == (
        '{"severity": "INFO", "message": "caf\\u00e9 ok", "event_id": "e1", "retry": 2, '
        '"logging.googleapis.com/labels": {"component": "dagtrigger"}}'
    )


class CreatingClient:
    def __init__(self) -> None:
        self.retry = RetryPolicy(deadline=5.0)
        self.runs: list[str] = []

    def trigger(
        self, dag_id: str, dag_run_id: str | None, conf: Mapping[str, Any], **_: Any
    ) -> TriggerResult:
        self.runs.append(str(dag_run_id))
        return TriggerResult(Outcome.CREATED, dag_id, str(dag_run_id), {}, 1)


def _handle_finalize_event(monkeypatch: pytest.MonkeyPatch, client: CreatingClient) -> str:
    dispatcher = Dispatcher(lambda: Router.single("d"), lambda: client)  # type: ignore[arg-type, return-value]
    monkeypatch.setattr(cloud_functions, "get_dispatcher", lambda: dispatcher)
    event = json.loads((EVENTS / "gcs_legacy_finalize.json").read_text())
    cloud_functions.handle_background_event(event["data"], event["context"])
    return str(event["context"]["eventId"])


def test_each_outcome_is_a_line_on_stdout_at_the_loggers_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = CreatingClient()
    stream = io.StringIO()
    with stdout_as(stream):
        event_id = _handle_finalize_event(monkeypatch, client)
        cloud_functions.logger.setLevel(logging.WARNING)
        try:
            _handle_finalize_event(monkeypatch, client)
            cloud_functions.handle_background_event({"name": 1}, {"eventId": "e9"})
        finally:
            cloud_functions.logger.setLevel(logging.INFO)

    created, rejected = [json.loads(line) for line in stream.getvalue().splitlines()]
    (run_id, _) = client.runs
    assert created == {
        "severity": "INFO",
        "message": f"created run {run_id} of DAG d for gs://acme-landing/sales/2024-06-01/orders.csv",
        "event_id": event_id,
        "dag_id": "d",
        "dag_run_id": run_id,
        "outcome": "created",
        "route": "DAG_ID",
        "logging.googleapis.com/labels": {"component": "dagtrigger"},
    }
    assert (rejected["severity"], rejected["outcome"], rejected["event_id"]) == (
        "ERROR",
        "rejected",
        "e9",
    )


class BrokenStdout(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(32, "Broken pipe")


def test_a_broken_stdout_fails_no_event(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = CreatingClient()
    with stdout_as(BrokenStdout()):
        _handle_finalize_event(monkeypatch, client)

    assert len(client.runs) == 1, "the run was created and the event acknowledged"
    assert "Broken pipe" in capsys.readouterr().err


@given(
    st.sampled_from([logging.INFO, logging.ERROR, logging.WARNING]),
    st.text(st.characters(exclude_categories=())),
    st.fixed_dictionaries(
        {},
        optional={
            "event_id": st.text(st.characters(exclude_categories=())),
            "dag_run_id": st.text(),
            "outcome": st.sampled_from(["created", "duplicate", "failed"]),
            "retry": st.integers(0, 10),
            "delay_s": st.floats(0, 30),
            "password": st.text(),
        },
    ),
)
def test_a_line_is_what_json_dumps_writes_for_its_entry(
    level: int, message: str, fields: dict[str, object]
) -> None:
    entry: dict[str, object] = {"severity": logging.getLevelName(level), "message": message}
    entry.update(
        (name, fields[name])
        for name in ("event_id", "dag_id", "dag_run_id", "outcome", "route", "retry", "delay_s")
        if fields.get(name) is not None
    )
    entry["logging.googleapis.com/labels"] = {"component": "dagtrigger"}
    record = logging.LogRecord("dagtrigger", level, __file__, 1, message, None, None)
    record.__dict__.update(fields)

    assert CloudLoggingFormatter().format(record) == json.dumps(entry)


def test_a_body_that_is_not_utf8_is_rejected_with_one_line_naming_the_byte() -> None:
    stream = io.StringIO()
    with stdout_as(stream):
        assert not cloud_functions.reject_unreadable_body("café".encode(), "e1")
        assert cloud_functions.reject_unreadable_body(b'{"a": "caf\xe9"}', "e2")

    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["severity"], line["outcome"], line["event_id"]) == ("ERROR", "rejected", "e2")
    assert line["message"].endswith("not UTF-8 text (byte 10 of 13 is 0xe9)")
