"""The core: a raw event in, the DAG runs and asset events it calls for planned, created once,
and reported.

Entry points call `Dispatcher.handle` (or `plan` then `send`) and turn the `Report` into their
platform's answer; nothing here knows which cloud delivered the event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dagtrigger.airflow.client import AssetEventResult, Outcome, RunTarget, run_state
from dagtrigger.airflow.retry import RetryPolicy
from dagtrigger.assets import IDENTITY_KEY, MAX_PARTITION_KEY_LENGTH, PlannedAssetEvent
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
    asset_events: tuple[PlannedAssetEvent, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to send: no run to start, no asset event to record."""
        return not self.runs and not self.asset_events


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
class AssetEventOutcome:
    planned: PlannedAssetEvent
    outcome: Outcome
    asset_event: Mapping[str, Any] | None = None  # the event as Airflow describes it
    error: DagTriggerError | None = None
    attempts: int = 0

    @property
    def asset_event_id(self) -> Any:
        return (self.asset_event or {}).get("id")

    def as_dict(self) -> dict[str, Any]:
        """What became of the asset event, as the CLI prints it and Lambda answers it."""
        line: dict[str, Any] = {
            "asset": self.planned.asset,
            "asset_event_id": self.asset_event_id,
            "partition_key": self.planned.partition_key,
            "outcome": self.outcome,
        }
        if self.error is not None:
            line["error"] = str(self.error)
        return line


@dataclass(frozen=True, slots=True)
class Report:
    plan: Plan
    outcomes: tuple[RunOutcome, ...]
    asset_outcomes: tuple[AssetEventOutcome, ...] = ()

    @property
    def errors(self) -> list[DagTriggerError]:
        runs = [o.error for o in self.outcomes if o.error is not None]
        return runs + [o.error for o in self.asset_outcomes if o.error is not None]

    @property
    def transient_errors(self) -> list[DagTriggerError]:
        """Failures worth redelivering the event for (what did succeed is idempotent)."""
        return [error for error in self.errors if error.retryable]

    @property
    def permanent_errors(self) -> list[DagTriggerError]:
        """Failures a redelivery would repeat: log them, acknowledge the event."""
        return [*self.plan.route_errors, *(error for error in self.errors if not error.retryable)]

    def count(self, outcome: str) -> int:
        """How many runs ended so."""
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    def count_asset_events(self, outcome: str) -> int:
        return sum(1 for o in self.asset_outcomes if o.outcome == outcome)


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
    asset_events: list[PlannedAssetEvent] = []
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
            refusal = _unsendable(
                trigger.conf, f"the conf for DAG {trigger.dag_id!r}", event, max_conf_bytes
            )
            if refusal is not None:
                route_errors.append(refusal)
                continue
            runs.append(PlannedRun(trigger.dag_id, run_id, trigger.conf, trigger.route, event))
        for planned in routing.asset_events:
            # The run id is the event's identity: the same object through any carrier.
            planned = replace(planned, extra={**planned.extra, IDENTITY_KEY: run_id}, key=run_id)
            what = f"the asset event for {planned.asset!r}"
            refusal = _unsendable(planned.extra, f"the extra of {what}", event, max_conf_bytes)
            if refusal is None:
                refusal = _bad_partition_key(planned, what, event)
            if refusal is not None:
                route_errors.append(refusal)
                continue
            asset_events.append(planned)
    return Plan(tuple(runs), tuple(ignored), tuple(notes), tuple(route_errors), tuple(asset_events))


def _unsendable(
    value: Mapping[str, Any], what: str, event: Event, max_bytes: int
) -> RouteError | None:
    """A refusal now, rather than a 500 retried forever, for a value Airflow cannot store."""
    try:
        size = len(_STRICT_JSON.encode(value).encode())
    except (ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        return RouteError(
            f"{what} from {event.provider} event {quote(event.event_id)} cannot be sent as JSON "
            f"({exc})",
            fix="NaN, Infinity, text that is not valid Unicode and values nested too deeply "
            "have no place in what Airflow stores.",
        )
    if size > max_bytes:
        return RouteError(
            f"{what} from {event.provider} event {quote(event.event_id)} is {size} bytes, over "
            f"DAGTRIGGER_MAX_CONF_BYTES={max_bytes}",
            fix='leave the payload out with a route that sets "replace_conf": true (for an asset '
            'event, "replace_extra": true), or raise the limit.',
        )
    return None


def _bad_partition_key(planned: PlannedAssetEvent, what: str, event: Event) -> RouteError | None:
    key = planned.partition_key
    if key is None or (key.strip() and len(key) <= MAX_PARTITION_KEY_LENGTH):
        return None
    shown = "empty" if not key.strip() else f"{len(key)} characters long"
    return RouteError(
        f"the partition key of {what} from {event.provider} event {quote(event.event_id)} is "
        f"{shown}",
        fix=f"template it from fields every matching event has, in at most "
        f"{MAX_PARTITION_KEY_LENGTH} characters",
    )


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
        if plan.empty:
            return Report(plan, ())
        try:
            client = self._client()
        except ConfigurationError:
            raise
        except DagTriggerError as exc:  # e.g. Composer's API refused us, or was unreachable
            return Report(
                plan,
                tuple(RunOutcome(run, Outcome.FAILED, error=exc) for run in plan.runs),
                tuple(AssetEventOutcome(a, Outcome.FAILED, error=exc) for a in plan.asset_events),
            )
        retry = None
        if deadline is not None and deadline < client.retry.deadline:
            retry = replace(client.retry, deadline=deadline)
        return Report(
            plan,
            tuple(self._send_one(client, run, retry) for run in plan.runs),
            tuple(_record_one(client, planned, retry) for planned in plan.asset_events),
        )

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


def _record_one(
    client: RunTarget, planned: PlannedAssetEvent, retry: RetryPolicy | None
) -> AssetEventOutcome:
    try:
        result: AssetEventResult = client.record_asset_event(planned, retry=retry)
    except ConfigurationError:
        raise
    except DagTriggerError as exc:
        return AssetEventOutcome(planned, Outcome.FAILED, error=exc)
    return AssetEventOutcome(planned, result.outcome, result.asset_event, attempts=result.attempts)


def _note(event: Event) -> str:
    subject = event.object.uri if event.object is not None else event.label
    return f"Triggered by dagtrigger: {event.provider} {event.event_type} {subject}"[:1000]
