"""Cloud Functions logs: one JSON object per line with the fields Cloud Logging indexes."""

from __future__ import annotations

import json
import logging

from dagtrigger.platforms.cloud_functions import CloudLoggingFormatter


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
