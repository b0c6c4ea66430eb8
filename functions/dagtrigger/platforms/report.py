"""Turning a dispatch Report into log records, the same way on every platform."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dagtrigger.airflow.client import Outcome
from dagtrigger.dispatch import AssetEventOutcome, Plan, Report

_SEVERITY = {
    Outcome.CREATED: logging.INFO,
    Outcome.DUPLICATE: logging.INFO,
    Outcome.FAILED: logging.ERROR,
}


@dataclass(frozen=True, slots=True)
class LogLine:
    level: int
    message: str
    fields: dict[str, Any]


def describe_report(report: Report, event_id: str | None) -> Iterator[LogLine]:
    """One line per run and asset event (created, duplicate or failed), per ignored part and per
    route error."""
    for outcome in report.outcomes:
        run = outcome.run
        subject = run.event.object.uri if run.event.object is not None else run.event.label
        if outcome.error is None:
            message = f"{outcome.outcome} run {run.dag_run_id} of DAG {run.dag_id} for {subject}"
        else:
            retry = "will be redelivered" if outcome.error.retryable else "not retried"
            message = f"failed to start DAG {run.dag_id} for {subject} ({retry}): {outcome.error}"
        yield LogLine(
            _SEVERITY[outcome.outcome],
            message,
            {
                "event_id": run.event.event_id,
                "dag_id": run.dag_id,
                "dag_run_id": run.dag_run_id,
                "outcome": outcome.outcome,
                "route": run.route,
            },
        )
    for recorded in report.asset_outcomes:
        yield _asset_event_line(recorded)
    yield from describe_plan_aside(report.plan, event_id)


def _asset_event_line(recorded: AssetEventOutcome) -> LogLine:
    planned = recorded.planned
    source = planned.event
    subject = source.object.uri if source.object is not None else source.label
    partition = f" (partition {planned.partition_key})" if planned.partition_key else ""
    if recorded.error is None:
        message = (
            f"{recorded.outcome} asset event {recorded.asset_event_id} of {planned.asset}"
            f"{partition} for {subject}"
        )
    else:
        retry = "will be redelivered" if recorded.error.retryable else "not retried"
        message = (
            f"failed to record an event of asset {planned.asset}{partition} for {subject} "
            f"({retry}): {recorded.error}"
        )
    return LogLine(
        _SEVERITY[recorded.outcome],
        message,
        {
            "event_id": source.event_id,
            "asset": planned.asset,
            "partition_key": planned.partition_key,
            "outcome": recorded.outcome,
            "route": planned.route,
        },
    )


def describe_plan_aside(plan: Plan, event_id: str | None) -> Iterator[LogLine]:
    for reason in plan.ignored:
        yield LogLine(
            logging.INFO, f"ignored: {reason}", {"event_id": event_id, "outcome": "ignored"}
        )
    for note in plan.notes:
        yield LogLine(logging.INFO, note, {"event_id": event_id})
    for error in plan.route_errors:
        yield LogLine(
            logging.ERROR,
            f"route failed, event acknowledged: {error}",
            {"event_id": event_id, "outcome": Outcome.FAILED},
        )
