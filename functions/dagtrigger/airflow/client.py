"""Airflow's REST API for triggering DAG runs: the experimental API (1.10), /api/v1 (2.x), /api/v2 (3.x).

A trigger is idempotent: the run id comes from the event, and a conflict counts as success only
once a read of that run id finds it. Any other conflict (Airflow 2's logical-date clash) and every
transient failure is retried with backoff inside the deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from dagtrigger.airflow.answers import REFUSALS, Answer, Asked, classify, kind_of_status
from dagtrigger.airflow.api import NEWEST_FIRST, ApiVersion
from dagtrigger.airflow.retry import RetryPolicy, call_with_retries
from dagtrigger.airflow.throttle import Throttle
from dagtrigger.airflow.transport import Transport
from dagtrigger.errors import ApiVersionError, DagTriggerError, ErrorKind, TransientTriggerError
from dagtrigger.http import Response

if TYPE_CHECKING:
    from dagtrigger.airflow.asset_events import AssetEvents
    from dagtrigger.assets import PlannedAssetEvent

DEFAULT_CONCURRENCY = 10


class Outcome(StrEnum):
    """What became of a planned run."""

    CREATED = "created"
    DUPLICATE = "duplicate"  # this event's run already existed: a redelivery
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TriggerResult:
    outcome: Outcome  # created, or duplicate when this event's run already existed
    dag_id: str
    dag_run_id: str
    dag_run: Mapping[str, Any]  # the run as Airflow describes it
    attempts: int

    @property
    def state(self) -> str | None:
        return run_state(self.dag_run)


@dataclass(frozen=True, slots=True)
class AssetEventResult:
    outcome: Outcome  # created, or duplicate when this event's asset event already existed
    asset_event: Mapping[str, Any]  # the asset event as Airflow describes it
    attempts: int


class RunTarget(Protocol):
    """What starts and reads runs: an Airflow (AirflowClient) or MWAA Serverless (WorkflowClient)."""

    retry: RetryPolicy

    def trigger(
        self,
        dag_id: str,
        dag_run_id: str | None,
        conf: Mapping[str, Any],
        *,
        note: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> TriggerResult: ...

    def get_dag_run(self, dag_id: str, dag_run_id: str) -> Mapping[str, Any] | None: ...

    def record_asset_event(
        self, planned: PlannedAssetEvent, *, retry: RetryPolicy | None = None
    ) -> AssetEventResult: ...


def run_state(dag_run: Mapping[str, Any]) -> str | None:
    state = dag_run.get("state")
    return state if isinstance(state, str) else None


def detect_api_version(transport: Transport) -> ApiVersion:
    """Ask the server which REST API it has: the newest that does not answer 404."""
    for version in NEWEST_FIRST:
        path = version.probe
        answer = classify(transport.request("GET", path))
        if answer.kind is ErrorKind.NOT_FOUND:
            continue
        if answer.retryable:
            raise answer.error_for(Asked(f"Airflow at {transport.description}", f"GET {path}"))
        if answer.kind in REFUSALS and version is not ApiVersion.EXPERIMENTAL:
            # /api/v1/version and /api/v2/version need no login: a front (IAP, Composer, a
            # proxy) refused us, and that says nothing about which API lies behind it.
            auth = transport.auth
            raise answer.error(
                f"{transport.description} refused {auth.description} ({answer.status}: "
                f"{answer.detail})",
                auth.hint(answer.status),
            )
        return version
    raise ApiVersionError(
        f"No Airflow REST API found at {transport.description} (404 for /api/v2, /api/v1 and "
        "/api/experimental)",
        fix="check AIRFLOW_URL points at the Airflow web server's base URL.",
    )


class AirflowClient:
    """Triggers and reads DAG runs; one instance is reused for every event of a process."""

    def __init__(
        self,
        transport: Transport,
        *,
        api_version: ApiVersion | str | None = None,
        retry: RetryPolicy | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.transport = transport
        self.retry = retry or RetryPolicy()
        self.throttle = throttle or Throttle(rate=None, concurrency=DEFAULT_CONCURRENCY)
        self._api_version = None if api_version is None else ApiVersion(api_version)
        self._lock = threading.Lock()
        self._trigger_paths: dict[tuple[ApiVersion, str], str] = {}  # (version, DAG id): its runs
        self._asset_events: AssetEvents | None = None

    @property
    def api_version(self) -> ApiVersion:
        """The configured version, else the detected one (asked once, then cached)."""
        if self._api_version is not None:  # set once and never changed: no lock to read it
            return self._api_version
        with self._lock:
            if self._api_version is None:
                self._api_version = call_with_retries(
                    lambda: detect_api_version(self.transport),
                    self.retry,
                    what=f"detecting the Airflow API version at {self.transport.description}",
                )
            return self._api_version

    def trigger(
        self,
        dag_id: str,
        dag_run_id: str | None,
        conf: Mapping[str, Any],
        *,
        note: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> TriggerResult:
        """Create the run, or confirm it already exists; raises the classified error otherwise."""
        version = self.api_version
        path = self._trigger_paths.get((version, dag_id))
        if path is None:
            path = f"{version.prefix}/dags/{quote(dag_id, safe='')}/" + (
                "dag_runs" if version is ApiVersion.EXPERIMENTAL else "dagRuns"
            )
            self._trigger_paths[(version, dag_id)] = path
        body = _trigger_body(version, dag_run_id, conf, note)
        attempts = 0
        uncertain = False  # an earlier attempt may have created the run without our hearing back

        def attempt() -> TriggerResult:
            nonlocal attempts, uncertain
            attempts += 1
            try:
                response = self.request("POST", path, json_body=body)
            except TransientTriggerError:
                uncertain = True
                raise
            if response.status in (200, 201):
                described = response.json()
                created = described if isinstance(described, dict) else {"dag_run_id": dag_run_id}
                # Airflow creates the run under the id it was given; only without one is the
                # answer needed to learn it.
                run_id = dag_run_id if dag_run_id is not None else _run_id_of(created, None)
                return TriggerResult(Outcome.CREATED, dag_id, run_id, created, attempts)
            if dag_run_id is not None and _is_conflict(version, response):
                existing = self._find_conflicting_run(dag_id, dag_run_id, response)
                if existing is not None:
                    outcome = Outcome.CREATED if uncertain else Outcome.DUPLICATE
                    return TriggerResult(outcome, dag_id, dag_run_id, existing, attempts)
                raise TransientTriggerError(
                    f"Airflow answered {response.status} ({response.detail()}) but run {dag_run_id!r} "
                    "does not exist: another run holds the same logical date",
                    kind=ErrorKind.RUN_CONFLICT,
                    status=response.status,
                )
            error = self._classify(response, dag_id, "trigger")
            if error.kind is ErrorKind.SERVER_ERROR:
                uncertain = True  # the server may have failed after it created the run
            raise error

        return call_with_retries(
            attempt,
            retry or self.retry,
            what=f"triggering DAG {dag_id!r} (run {dag_run_id})",
        )

    @property
    def asset_events(self) -> AssetEvents:
        """Asset (dataset) events through this client, made on first use."""
        if self._asset_events is None:
            from dagtrigger.airflow.asset_events import AssetEvents

            with self._lock:
                if self._asset_events is None:
                    self._asset_events = AssetEvents(self)
        return self._asset_events

    def record_asset_event(
        self, planned: PlannedAssetEvent, *, retry: RetryPolicy | None = None
    ) -> AssetEventResult:
        """Record the asset event, or find the one this event recorded before."""
        return self.asset_events.record(planned, retry=retry)

    def get_dag_run(self, dag_id: str, dag_run_id: str) -> Mapping[str, Any] | None:
        """The run as Airflow describes it, or None when it does not exist."""
        version = self.api_version
        dag = quote(dag_id, safe="")
        if version is ApiVersion.EXPERIMENTAL:
            response = self.request("GET", f"{version.prefix}/dags/{dag}/dag_runs")
            if response.status == 200 and isinstance(runs := response.json(), list):
                return next(
                    (r for r in runs if isinstance(r, dict) and r.get("run_id") == dag_run_id), None
                )
        else:
            path = f"{version.prefix}/dags/{dag}/dagRuns/{quote(dag_run_id, safe='')}"
            response = self.request("GET", path)
            if response.status == 200 and isinstance(run := response.json(), dict):
                return run
        if response.status == 404:
            return None
        raise self._classify(response, dag_id, "read run of")

    def request(self, method: str, path: str, *, json_body: Any = None) -> Response:
        """One paced call; 429s slow this process down, successes speed it up again."""
        with self.throttle.slot():
            try:
                response = self.transport.request(method, path, json_body=json_body)
            except TransientTriggerError as exc:
                if exc.kind is ErrorKind.THROTTLED:
                    self.throttle.throttled(exc.retry_after)
                raise
        kind = kind_of_status(response.status)
        if kind is ErrorKind.THROTTLED:
            self.throttle.throttled(response.retry_after())
        elif kind is not ErrorKind.SERVER_ERROR:
            self.throttle.succeeded()
        return response

    def _find_conflicting_run(
        self, dag_id: str, dag_run_id: str, conflict: Response
    ) -> Mapping[str, Any] | None:
        """The run a conflict is about, or None when it was about something else."""
        path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(dag_run_id, safe='')}"
        limit = self.transport.max_path_length
        if limit is None or len(path) <= limit:
            return self.get_dag_run(dag_id, dag_run_id)
        # The run cannot be read back through this transport: trust what the conflict says.
        # Airflow 3 sends no logical date, so its only conflict is the run id; Airflow 2 names it.
        detail = conflict.detail()
        if self.api_version is ApiVersion.V2 or "DAGRun ID" in detail:
            return {"dag_run_id": dag_run_id}
        return None

    def _api_answers(self) -> bool:
        """Whether the API version in use exists here: a 404 for a DAG may mean it does not."""
        try:
            probe = self.transport.request("GET", self.api_version.probe)
        except DagTriggerError:
            return True  # cannot tell: report what the server said about the DAG
        return probe.status != 404

    def _classify(self, response: Response, dag_id: str, action: str) -> DagTriggerError:
        answer = classify(response)
        where = f"Airflow at {self.transport.description}"
        removed = answer.kind is ErrorKind.NOT_FOUND and "/api/v1 has been removed" in answer.detail
        if removed or answer.status == 405:
            # Airflow 3 answers 404 to GET and 405 to POST under the /api/v1 it no longer has.
            return answer.error(
                f"{where} has no {self.api_version} API for this call ({answer.status}: "
                f"{answer.detail})",
                "on Airflow 3 set AIRFLOW_API_VERSION=v2, or unset it to detect the version.",
                kind=ErrorKind.API_VERSION,
            )
        if answer.kind is ErrorKind.NOT_FOUND:
            return self._not_found(answer, dag_id, where)
        if answer.kind is ErrorKind.REJECTED:
            return answer.error(
                f"{where} rejected the run for DAG {dag_id!r} ({answer.status}: {answer.detail})",
                "If the DAG declares params, make the conf match them (route conf / replace_conf).",
                kind=ErrorKind.CONF_REJECTED,
            )
        return answer.error_for(Asked(where, f"{action} DAG {dag_id!r}", self.transport.auth))

    def _not_found(self, answer: Answer, dag_id: str, where: str) -> DagTriggerError:
        # Airflow's "no such DAG" is a JSON problem; any other 404 may be an API it lacks.
        if not isinstance(answer.response.json(), dict) and not self._api_answers():
            return answer.error(
                f"{where} has no {self.api_version} API ({answer.status} for DAG {dag_id!r}, and "
                f"for {self.api_version.probe} too)",
                "unset AIRFLOW_API_VERSION so that dagtrigger detects the version, or set v1 for "
                "Airflow 2 and v2 for Airflow 3.",
                kind=ErrorKind.API_VERSION,
            )
        return answer.error(
            f"DAG {dag_id!r} was not found at {where} ({answer.status}: {answer.detail})",
            "Check the DAG id (DAG_ID or the route's dag_id), that its file is in the DAGs folder "
            "and has no import errors (Airflow UI: Import errors), and that Airflow has parsed it.",
            kind=ErrorKind.DAG_NOT_FOUND,
        )


def _trigger_body(
    version: ApiVersion, dag_run_id: str | None, conf: Mapping[str, Any], note: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"conf": dict(conf)}
    if version is ApiVersion.EXPERIMENTAL:
        # "false" keeps sub-second execution dates, so two events in one second do not clash.
        body["replace_microseconds"] = "false"
        if dag_run_id is not None:
            body["run_id"] = dag_run_id
    else:
        if dag_run_id is not None:
            body["dag_run_id"] = dag_run_id
        if version is ApiVersion.V2:
            # Airflow 3 requires the key; null means "no data interval", right for events.
            body["logical_date"] = None
            if note is not None:
                body["note"] = note
    return body


def _is_conflict(version: ApiVersion, response: Response) -> bool:
    if response.status == 409:
        return True
    # Airflow 1.10 reports an existing run id as 400 "Run id ... already exists".
    return (
        version is ApiVersion.EXPERIMENTAL
        and response.status == 400
        and "already exists" in response.detail()
    )


def _run_id_of(run: Mapping[str, Any], fallback: str | None) -> str:
    value = run.get("dag_run_id") or run.get("run_id") or fallback
    return str(value)
