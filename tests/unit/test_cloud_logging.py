"""Cloud Functions logs: one JSON object per line with the fields Cloud Logging indexes."""

from __future__ import annotations

import io
import json
import logging

from hypothesis import given
from hypothesis import strategies as st

from dagtrigger.platforms import cloud_functions
from dagtrigger.platforms.cloud_functions import CloudLoggingFormatter
from dagtrigger.platforms.report import LogLine


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


def test_an_event_line_is_written_as_the_formatter_writes_records() -> None:
    fields = {"event_id": "e3", "dag_id": "d", "dag_run_id": "r", "outcome": "created"}
    stream = io.StringIO()
    handler = cloud_functions.configure_logging()
    previous = handler.setStream(stream)
    logger = cloud_functions.logger
    try:
        cloud_functions._log(LogLine(logging.INFO, "created run r of DAG d", fields))
        logger.setLevel(logging.WARNING)
        cloud_functions._log(LogLine(logging.INFO, "not written at WARNING", fields))
        cloud_functions._log(LogLine(logging.ERROR, "failed to start DAG d", fields))
    finally:
        logger.setLevel(logging.INFO)
        handler.setStream(previous)

    written = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert written == [
        _format(logging.INFO, "created run r of DAG d", **fields),
        _format(logging.ERROR, "failed to start DAG d", **fields),
    ]


@given(
    st.sampled_from(["INFO", "ERROR", "WARNING"]),
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
    severity: str, message: str, fields: dict[str, object]
) -> None:
    entry: dict[str, object] = {"severity": severity, "message": message}
    entry.update(
        (name, fields[name])
        for name in ("event_id", "dag_id", "dag_run_id", "outcome", "route", "retry", "delay_s")
        if fields.get(name) is not None
    )
    entry["logging.googleapis.com/labels"] = {"component": "dagtrigger"}

    assert cloud_functions.cloud_logging_line(severity, message, fields) == json.dumps(entry)


def test_a_body_that_is_not_utf8_is_rejected_with_one_line_naming_the_byte() -> None:
    stream = io.StringIO()
    handler = cloud_functions.configure_logging()
    previous = handler.setStream(stream)
    try:
        assert not cloud_functions.reject_unreadable_body("café".encode(), "e1")
        assert cloud_functions.reject_unreadable_body(b'{"a": "caf\xe9"}', "e2")
    finally:
        handler.setStream(previous)

    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["severity"], line["outcome"], line["event_id"]) == ("ERROR", "rejected", "e2")
    assert line["message"].endswith("not UTF-8 text (byte 10 of 13 is 0xe9)")
