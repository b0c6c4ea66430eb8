"""The core: a raw event in, the DAG runs it calls for planned, created once, and reported.

Entry points call `Dispatcher.handle` (or `plan` then `send`) and turn the `Report` into their
platform's answer; nothing here knows which cloud delivered the event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dagtrigger.airflow.client import Outcome, RunTarget, run_state
from dagtrigger.airflow.retry import RetryPolicy
from dagtrigger.errors import ConfigurationError, DagTriggerError, RouteError
from dagtrigger.events import Event, Normalised, normalise
from dagtrigger.events.payload import quote
from dagtrigger.routing import Router
from dagtrigger.run_id import build_dag_run_id


@dataclass(frozen=True, slots=True)
class PlannedRun:
    dag_id: str
    dag_run_id: str
    conf: Mapping[str, Any]
    route: str
    event: Event

    def as_dict(self) -> dict[str, Any]:
        return {"dag_id": self.dag_id, "dag_run_id": self.dag_run_id, "conf": dict(self.conf)}


@dataclass(frozen=True, slots=True)
class Plan:
    runs: tuple[PlannedRun, ...] = ()
    ignored: tuple[str, ...] = ()  # why parts of the payload, or whole events, start no run
    notes: tuple[str, ...] = ()
    route_errors: tuple[RouteError, ...] = ()


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run: PlannedRun
    outcome: Outcome
    dag_run: Mapping[str, Any] | None = None  # the run as Airflow describes it
    error: DagTriggerError | None = None
    attempts: int = 0

    @property
    def state(self) -> str | None:
        return None if self.dag_run is None else run_state(self.dag_run)


@dataclass(frozen=True, slots=True)
class Report:
    plan: Plan
    outcomes: tuple[RunOutcome, ...]

    @property
    def transient_errors(self) -> list[DagTriggerError]:
        """Failures worth redelivering the event for (the runs that did succeed are idempotent)."""
        return [o.error for o in self.outcomes if o.error is not None and o.error.retryable]

    @property
    def permanent_errors(self) -> list[DagTriggerError]:
        """Failures a redelivery would repeat: log them, acknowledge the event."""
        failed = [o.error for o in self.outcomes if o.error is not None and not o.error.retryable]
        return [*self.plan.route_errors, *failed]

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


DEFAULT_MAX_CONF_BYTES = 64 * 1024
# Strict JSON Airflow can store: NaN/Infinity raise, and encoding raises on lone surrogates.
_STRICT_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def plan_events(
    normalised: Normalised, router: Router, max_conf_bytes: int = DEFAULT_MAX_CONF_BYTES
) -> Plan:
    """Route every event and give each planned run its deterministic id.

    A conf larger than `max_conf_bytes` as JSON is refused: Airflow stores conf in its metadata
    database with every run, and large payloads belong in object storage, referenced by URI.
    """
    runs: list[PlannedRun] = []
    ignored = list(normalised.skipped)
    notes: list[str] = []
    route_errors: list[RouteError] = []
    for event in normalised.events:
        try:
            routing = router.route(event)
        except RouteError as exc:
            route_errors.append(exc)
            continue
        notes.extend(routing.notes)
        if routing.ignored is not None:
            ignored.append(routing.ignored)
        run_id = build_dag_run_id(event)
        for trigger in routing.triggers:
            try:  # a refusal now rather than a 500 retried forever
                size = len(_STRICT_JSON.encode(trigger.conf).encode())
            except (ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
                route_errors.append(
                    RouteError(
                        f"the conf for DAG {trigger.dag_id!r} from {event.provider} event "
                        f"{quote(event.event_id)} cannot be sent as JSON ({exc})",
                        fix="NaN, Infinity, text that is not valid Unicode and values nested too "
                        "deeply have no place in a DAG run's conf.",
                    )
                )
                continue
            if size > max_conf_bytes:
                route_errors.append(
                    RouteError(
                        f"the conf for DAG {trigger.dag_id!r} from {event.provider} event "
                        f"{quote(event.event_id)} is {size} bytes, over DAGTRIGGER_MAX_CONF_BYTES="
                        f"{max_conf_bytes}",
                        fix="leave the payload out with a route that sets "
                        '"replace_conf": true, or raise the limit.',
                    )
                )
                continue
            runs.append(PlannedRun(trigger.dag_id, run_id, trigger.conf, trigger.route, event))
    return Plan(tuple(runs), tuple(ignored), tuple(notes), tuple(route_errors))


class Dispatcher:
    """Plans and sends runs. The router and client are built on first use and then reused."""

    def __init__(
        self,
        router: Callable[[], Router],
        client: Callable[[], RunTarget],
        max_conf_bytes: int = DEFAULT_MAX_CONF_BYTES,
    ) -> None:
        self._router = router
        self._client = client
        self._max_conf_bytes = max_conf_bytes

    def plan(self, payload: Any) -> Plan:
        """Raises EventError for a payload that cannot be used; never touches the network."""
        return self.plan_normalised(normalise(payload))

    def plan_normalised(self, normalised: Normalised) -> Plan:
        return plan_events(normalised, self._router(), self._max_conf_bytes)

    def send(self, plan: Plan, *, deadline: float | None = None) -> Report:
        """Create every planned run; one run's failure does not stop the others.

        A ConfigurationError, wherever it is found (building the client, the first token, the
        first request), is raised rather than reported: every event would fail the same way,
        and the platform must keep this one until the deployment is fixed.
        `deadline` shortens the retry deadline (e.g. to the time a Lambda invocation has left).
        """
        if not plan.runs:
            return Report(plan, ())
        try:
            client = self._client()
        except ConfigurationError:
            raise
        except DagTriggerError as exc:  # e.g. Composer's API refused us, or was unreachable
            return Report(
                plan, tuple(RunOutcome(run, Outcome.FAILED, error=exc) for run in plan.runs)
            )
        retry = None
        if deadline is not None and deadline < client.retry.deadline:
            retry = replace(client.retry, deadline=deadline)
        return Report(plan, tuple(self._send_one(client, run, retry) for run in plan.runs))

    def handle(self, payload: Any, *, deadline: float | None = None) -> Report:
        return self.send(self.plan(payload), deadline=deadline)

    @staticmethod
    def _send_one(client: RunTarget, run: PlannedRun, retry: RetryPolicy | None) -> RunOutcome:
        try:
            result = client.trigger(
                run.dag_id,
                run.dag_run_id,
                run.conf,
                note=_note(run.event),
                retry=retry,
            )
        except ConfigurationError:
            raise
        except DagTriggerError as exc:
            return RunOutcome(run, Outcome.FAILED, error=exc)
        return RunOutcome(run, result.outcome, result.dag_run, attempts=result.attempts)


def _note(event: Event) -> str:
    subject = event.object.uri if event.object is not None else event.label
    return f"Triggered by dagtrigger: {event.provider} {event.event_type} {subject}"[:1000]
