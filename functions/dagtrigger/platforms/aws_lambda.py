"""AWS Lambda: S3, EventBridge, SNS and SQS events in, DAG runs out, the answer Lambda expects.

What Lambda is told:
- SQS batches get a partial batch response: only records that failed transiently (or met a
  configuration error) are listed in `batchItemFailures` and come back; the queue's redrive
  policy moves a record that keeps failing to its dead-letter queue. Unusable records and
  permanent refusals are logged at ERROR, counted in the Failed metric, and acknowledged, so one
  bad record never holds back the others.
- Direct (asynchronous) invocations from S3, EventBridge and SNS raise on any failure, so Lambda
  retries them a bounded number of times and then hands them to the on-failure destination:
  nothing is lost, nothing loops.

Records of an SQS batch are triggered concurrently, so a batch of ten costs about one request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from dagtrigger.airflow.client import Outcome
from dagtrigger.dispatch import Report
from dagtrigger.errors import EventError, TransientTriggerError
from dagtrigger.events import normalise_sqs_record
from dagtrigger.platforms.report import LogLine, describe_report
from dagtrigger.runtime import get_dispatcher


def _log_json(entry: Any) -> str:
    """Powertools' compact JSON; a lone surrogate from a payload is escaped, not the line lost."""
    text = json.dumps(entry, default=str, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # stdout cannot write it: logging would drop the whole line
        return json.dumps(entry, default=str, separators=(",", ":"))
    return text


def _message_as_text(message: object) -> str:
    """dagtrigger's messages are text: powertools would otherwise try to parse each as JSON."""
    return str(message)


logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", "dagtrigger"),
    json_serializer=_log_json,
    json_deserializer=_message_as_text,
)
# The namespace infra/aws's alarms read unless POWERTOOLS_METRICS_NAMESPACE names another;
# Powertools takes the `service` dimension from POWERTOOLS_SERVICE_NAME.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dagtrigger"))
# Powertools' Metrics is not thread-safe, and the records of an SQS batch count from threads.
_counting = threading.Lock()
# An invocation that counts nothing (a configuration error) is no fault worth a warning.
warnings.filterwarnings("ignore", "No application metrics to publish")

_SAFETY_MARGIN_S = 3.0  # leave Lambda time to report the outcome before it times out
_BATCH_CONCURRENCY = 10  # SQS's largest standard batch
_executor: ThreadPoolExecutor | None = None


class EventFailed(Exception):
    """Raised to Lambda so it retries the invocation and then sends it to the on-failure destination."""


def _with_optional_tracing(handler: Any) -> Any:
    """X-Ray tracing when POWERTOOLS_TRACE_DISABLED=false (it needs aws-xray-sdk packaged too)."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() != "false":
        return handler
    from aws_lambda_powertools import Tracer

    return Tracer().capture_lambda_handler(handler)


@_with_optional_tracing
def handle(event: Any, context: Any) -> Any:
    """The Lambda handler for every supported event source."""
    try:
        if _is_sqs_batch(event):
            processor = AsyncBatchProcessor(event_type=EventType.SQS)
            return async_process_partial_response(
                dict(event),
                lambda record: _run_in_thread(_handle_sqs_record, record, context),
                processor,
                context,
            )
        return _handle_direct(event, context)
    finally:
        metrics.flush_metrics()  # before Lambda freezes the process, whatever the outcome
        # Powertools keeps disabled metrics through the flush: in a warm process they would
        # pile up until its limit of a hundred values per metric wrote them anyway.
        metrics.clear_metrics()


def _handle_direct(event: Any, context: Any) -> dict[str, Any]:
    # Lambda may be invoked with any JSON value: a list or a string is an unusable event too.
    event_id = ""
    if isinstance(event, Mapping):
        event_id = str(event.get("id") or _first_record_id(event) or "")
    logger.thread_safe_append_keys(correlation_id=event_id)  # this thread's, as for SQS records
    dispatcher = get_dispatcher()
    try:
        plan = dispatcher.plan(event)
    except EventError as exc:
        _count("Failed", 1)
        logger.error(
            f"unusable event, sent to the on-failure destination: {exc}", outcome="rejected"
        )
        raise EventFailed(str(exc)) from exc
    report = dispatcher.send(plan, deadline=_deadline(context))
    _log_and_count(report, event_id)
    failures = [*report.transient_errors, *report.permanent_errors]
    if failures:
        raise EventFailed(
            f"{len(failures)} run(s) failed for event {event_id}: {failures[0]}"
        ) from failures[0]
    answer: dict[str, Any] = {
        "runs": [
            {"dag_id": o.run.dag_id, "dag_run_id": o.run.dag_run_id, "outcome": o.outcome}
            for o in report.outcomes
        ],
        "ignored": list(report.plan.ignored),
    }
    if report.asset_outcomes:
        answer["asset_events"] = [o.as_dict() for o in report.asset_outcomes]
    return answer


def _handle_sqs_record(record: SQSRecord, context: Any) -> None:
    # Not record.message_id: a record without one must be acknowledged as unusable, not crash.
    message_id = str(record.raw_event.get("messageId") or "")
    # Records run in threads of one process: the id must be this thread's, not the logger's.
    logger.thread_safe_append_keys(correlation_id=message_id)
    dispatcher = (
        get_dispatcher()
    )  # a configuration error fails the record: it comes back once fixed
    try:
        plan = dispatcher.plan_normalised(normalise_sqs_record(record.raw_event))
    except EventError as exc:
        _count("Failed", 1)
        shown = message_id or "(no messageId)"
        logger.error(f"unusable SQS message {shown}, acknowledged: {exc}", outcome="rejected")
        return
    report = dispatcher.send(plan, deadline=_deadline(context))
    _log_and_count(report, message_id)
    if report.transient_errors:
        first = report.transient_errors[0]
        raise TransientTriggerError(
            f"SQS message {message_id} will be redelivered: {first}"
        ) from first


def _log_and_count(report: Report, event_id: str) -> None:
    counts = {
        "RunsCreated": report.count(Outcome.CREATED),
        "AssetEventsCreated": report.count_asset_events(Outcome.CREATED),
        "Duplicates": report.count(Outcome.DUPLICATE)
        + report.count_asset_events(Outcome.DUPLICATE),
        "Ignored": len(report.plan.ignored),
        "Failed": report.count(Outcome.FAILED)
        + report.count_asset_events(Outcome.FAILED)
        + len(report.plan.route_errors),
    }
    for name, value in counts.items():
        if value:
            _count(name, value)
    for line in describe_report(report, event_id):
        _log(line)


def _count(name: str, value: int) -> None:
    with _counting:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _log(line: LogLine) -> None:
    log = logger.error if line.level >= logging.ERROR else logger.info
    log(line.message, extra=line.fields)


async def _run_in_thread(function: Any, record: SQSRecord, context: Any) -> None:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(_BATCH_CONCURRENCY, thread_name_prefix="dagtrigger")
    await asyncio.get_running_loop().run_in_executor(_executor, function, record, context)


def _deadline(context: Any) -> float | None:
    """Retry no longer than the invocation has left (dagtrigger's own deadline still applies)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    seconds = float(remaining()) / 1000 - _SAFETY_MARGIN_S
    return max(seconds, 0.5)


def _is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, Mapping) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def _first_record_id(event: Mapping[str, Any]) -> str | None:
    records = event.get("Records")
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        return None
    record = records[0]
    sns = record.get("Sns")
    if isinstance(sns, dict):
        return str(sns.get("MessageId", "")) or None
    s3 = record.get("s3")
    if isinstance(s3, dict) and isinstance(s3.get("object"), dict):
        return str(s3["object"].get("sequencer", "")) or None
    return None
