"""Cloud Functions: a CloudEvent (2nd gen, Eventarc) or background event (1st gen) in, runs out.

What the platform is told:
- returning acknowledges the event: runs created or duplicate, events ignored on purpose, and
  unusable events and permanent refusals (logged at ERROR with the fix), which a retry would
  only repeat;
- raising makes Cloud Functions / Eventarc redeliver it (when retries are enabled): transient
  failures after dagtrigger's own retries, and configuration errors, which a redeploy fixes,
  so that no event is lost while the function is misconfigured.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from dagtrigger.errors import EventError, TransientTriggerError
from dagtrigger.events import Normalised, normalise_background, normalise_cloudevent
from dagtrigger.platforms.report import describe_report
from dagtrigger.runtime import get_dispatcher

logger = logging.getLogger("dagtrigger")

_STRUCTURED_FIELDS = (
    "event_id",
    "dag_id",
    "dag_run_id",
    "asset",
    "partition_key",
    "outcome",
    "route",
    "retry",
    "delay_s",
)


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per line, as Cloud Logging reads stdout: `severity`, `message`, fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        entry: dict[str, Any] = {"severity": record.levelname, "message": message}
        # A record's extra fields are its attributes: only the structured ones reach the log.
        for name in _STRUCTURED_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        entry["logging.googleapis.com/labels"] = {"component": "dagtrigger"}
        return json.dumps(entry, default=str)


_stdout: logging.StreamHandler[TextIO] | None = None


def configure_logging() -> logging.StreamHandler[TextIO]:
    """Send dagtrigger's records to stdout as Cloud Logging JSON (once per process)."""
    global _stdout
    if _stdout is None:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(CloudLoggingFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        _stdout = handler
    return _stdout


def handle_cloud_event(cloud_event: Any) -> None:
    """A functions-framework CloudEvent (GCS object events, Pub/Sub messages), binary or structured."""
    attributes: Mapping[str, Any] = cloud_event.get_attributes()
    data = cloud_event.get_data()
    _handle(lambda: normalise_cloudevent(attributes, data), str(attributes.get("id", "")))


def handle_background_event(data: Any, context: Any) -> None:
    """A 1st-gen background event: `context` is functions-framework's Context or a dict."""
    if not isinstance(context, Mapping):
        context = {
            "eventId": getattr(context, "event_id", None),
            "timestamp": getattr(context, "timestamp", None),
            "eventType": getattr(context, "event_type", None),
            "resource": getattr(context, "resource", None),
        }
    _handle(lambda: normalise_background(data, context), str(context.get("eventId") or ""))


def reject_unreadable_body(body: bytes, event_id: str) -> bool:
    """True, after logging it as unusable, when a request's body is not UTF-8 text."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        configure_logging()
        logger.error(
            f"unusable event, acknowledged: the request body is not UTF-8 text (byte "
            f"{exc.start} of {len(body)} is {body[exc.start]:#04x})",
            extra={"event_id": event_id, "outcome": "rejected"},
        )
        return True
    return False


def _handle(normalise: Callable[[], Normalised], event_id: str) -> None:
    configure_logging()
    dispatcher = get_dispatcher()  # a ConfigurationError raises: redelivered once fixed
    try:
        normalised = normalise()
    except EventError as exc:
        logger.error(
            f"unusable event, acknowledged: {exc}",
            extra={"event_id": event_id, "outcome": "rejected"},
        )
        return
    report = dispatcher.send(dispatcher.plan_normalised(normalised))
    for line in describe_report(report, event_id):
        logger.log(line.level, line.message, extra=line.fields)
    if report.transient_errors:
        first = report.transient_errors[0]
        raise TransientTriggerError(
            f"{len(report.transient_errors)} run(s) for event {event_id} failed transiently; "
            f"the event will be redelivered: {first}"
        ) from first
