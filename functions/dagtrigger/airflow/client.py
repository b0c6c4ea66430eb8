"""Airflow's REST API for triggering DAG runs: the experimental API (1.10), /api/v1 (2.x), /api/v2 (3.x).

A trigger is idempotent: the run id comes from the event, and a conflict counts as success only
once a read of that run id finds it. Any other conflict (Airflow 2's logical-date clash) and every
transient failure is retried with backoff inside the deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii  # json's own C escaper
from typing import Any
from urllib.parse import quote

from dagtrigger.airflow.retry import RetryPolicy, call_with_retries
from dagtrigger.airflow.throttle import Throttle
from dagtrigger.airflow.transport import Transport
from dagtrigger.errors import (
    ApiVersionError,
    AuthenticationError,
    AuthorizationError,
    ConfRejectedError,
    DagNotFoundError,
    DagTriggerError,
    PermanentTriggerError,
    TransientTriggerError,
)
from dagtrigger.http import EncodedJson, Response

DEFAULT_CONCURRENCY = 10
_PREFIX = {"experimental": "/api/experimental", "v1": "/api/v1", "v2": "/api/v2"}
_VERSION_PROBE = {
    "v2": "/api/v2/version",
    "v1": "/api/v1/version",
    "experimental": "/api/experimental/test",
}  # newest first: detection takes the first that exists


@dataclass(frozen=True, slots=True)
class TriggerResult:
    outcome: str  # "created", or "duplicate" when this event's run already existed
    dag_id: str
    dag_run_id: str
    dag_run: Mapping[str, Any]  # the run as Airflow describes it
    attempts: int

    @property
    def state(self) -> str | None:
        return run_state(self.dag_run)


def run_state(dag_run: Mapping[str, Any]) -> str | None:
    state = dag_run.get("state")
    return state if isinstance(state, str) else None


class DescribedRun(Mapping[str, Any]):
    """The run in Airflow's answer, parsed when first read: the warm path never reads it."""

    __slots__ = ("_answer", "_fallback", "_run")

    def __init__(self, answer: Response, fallback: Mapping[str, Any]) -> None:
        self._answer = answer
        self._fallback = fallback  # what is known when the answer holds no JSON object
        self._run: Mapping[str, Any] | None = None

    def _parsed(self) -> Mapping[str, Any]:
        if self._run is None:
            run = self._answer.json()
            self._run = run if isinstance(run, dict) else self._fallback
        return self._run

    def __getitem__(self, key: str) -> Any:
        return self._parsed()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())


def detect_api_version(transport: Transport) -> str:
    """Ask the server which REST API it has: the newest that does not answer 404."""
    for version, path in _VERSION_PROBE.items():
        response = transport.request("GET", path)
        if response.status >= 500 or response.status == 429:
            raise TransientTriggerError(
                f"Airflow at {transport.description} answered {response.status} to GET {path}",
                status=response.status,
                retry_after=response.retry_after(),
            )
        if response.status in (401, 403) and version != "experimental":
            # /api/v1/version and /api/v2/version need no login: a front (IAP, Composer, a
            # proxy) refused us, and that says nothing about which API lies behind it.
            error = AuthenticationError if response.status == 401 else AuthorizationError
            raise error(
                f"{transport.description} refused {transport.auth.description} "
                f"({response.status}: {response.detail()}). {transport.auth.hint(response.status)}",
                status=response.status,
            )
        if response.status != 404:
            return version
    raise ApiVersionError(
        f"No Airflow REST API found at {transport.description} (404 for /api/v2, /api/v1 and "
        "/api/experimental): check AIRFLOW_URL points at the Airflow web server's base URL."
    )


class AirflowClient:
    """Triggers and reads DAG runs; one instance is reused for every event of a process."""

    def __init__(
        self,
        transport: Transport,
        *,
        api_version: str | None = None,
        retry: RetryPolicy | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.transport = transport
        self.retry = retry or RetryPolicy()
        self.throttle = throttle or Throttle(rate=None, concurrency=DEFAULT_CONCURRENCY)
        self._api_version = api_version
        self._lock = threading.Lock()
        self._trigger_paths: dict[tuple[str, str], str] = {}  # (API version, DAG id): its dagRuns

    @property
    def api_version(self) -> str:
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
        conf_json: str | None = None,
    ) -> TriggerResult:
        """Create the run, or confirm it already exists; raises the classified error otherwise.

        `conf_json`, when given, is `conf` as JSON text already (the planner's): it is sent as it
        is rather than encoded again.
        """
        version = self.api_version
        path = self._trigger_paths.get((version, dag_id))
        if path is None:
            path = f"{_PREFIX[version]}/dags/{quote(dag_id, safe='')}/" + (
                "dag_runs" if version == "experimental" else "dagRuns"
            )
            self._trigger_paths[(version, dag_id)] = path
        body = _trigger_body(version, dag_run_id, conf, note, conf_json)
        attempts = 0
        uncertain = False  # an earlier attempt may have created the run without our hearing back

        def attempt() -> TriggerResult:
            nonlocal attempts, uncertain
            attempts += 1
            try:
                response = self._request("POST", path, json_body=body)
            except TransientTriggerError:
                uncertain = True
                raise
            if response.status in (200, 201):
                created = DescribedRun(response, {"dag_run_id": dag_run_id})
                # Airflow creates the run under the id it was given; only without one is the
                # answer needed to learn it.
                run_id = dag_run_id if dag_run_id is not None else _run_id_of(created, None)
                return TriggerResult("created", dag_id, run_id, created, attempts)
            if dag_run_id is not None and _is_conflict(version, response):
                existing = self._find_conflicting_run(dag_id, dag_run_id, response)
                if existing is not None:
                    outcome = "created" if uncertain else "duplicate"
                    return TriggerResult(outcome, dag_id, dag_run_id, existing, attempts)
                raise TransientTriggerError(
                    f"Airflow answered {response.status} ({response.detail()}) but run {dag_run_id!r} "
                    "does not exist: another run holds the same logical date",
                    status=response.status,
                )
            if response.status >= 500:
                uncertain = True
            raise self._classify(response, dag_id, "trigger")

        return call_with_retries(
            attempt,
            retry or self.retry,
            what=f"triggering DAG {dag_id!r} (run {dag_run_id})",
        )

    def get_dag_run(self, dag_id: str, dag_run_id: str) -> Mapping[str, Any] | None:
        """The run as Airflow describes it, or None when it does not exist."""
        version = self.api_version
        dag = quote(dag_id, safe="")
        if version == "experimental":
            response = self._request("GET", f"{_PREFIX[version]}/dags/{dag}/dag_runs")
            if response.status == 200 and isinstance(runs := response.json(), list):
                return next(
                    (r for r in runs if isinstance(r, dict) and r.get("run_id") == dag_run_id), None
                )
        else:
            path = f"{_PREFIX[version]}/dags/{dag}/dagRuns/{quote(dag_run_id, safe='')}"
            response = self._request("GET", path)
            if response.status == 200 and isinstance(run := response.json(), dict):
                return run
        if response.status == 404:
            return None
        raise self._classify(response, dag_id, "read run of")

    def _request(self, method: str, path: str, *, json_body: Any = None) -> Response:
        """One paced call; 429s slow this process down, successes speed it up again."""
        with self.throttle.slot():
            try:
                response = self.transport.request(method, path, json_body=json_body)
            except TransientTriggerError as exc:
                if exc.status == 429:
                    self.throttle.throttled(exc.retry_after)
                raise
        if response.status == 429:
            self.throttle.throttled(response.retry_after())
        elif response.status < 500:
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
        if self.api_version == "v2" or "DAGRun ID" in detail:
            return {"dag_run_id": dag_run_id}
        return None

    def _api_answers(self) -> bool:
        """Whether the API version in use exists here: a 404 for a DAG may mean it does not."""
        try:
            probe = self.transport.request("GET", _VERSION_PROBE[self.api_version])
        except DagTriggerError:
            return True  # cannot tell: report what the server said about the DAG
        return probe.status != 404

    def _classify(self, response: Response, dag_id: str, action: str) -> Exception:
        status, detail = response.status, response.detail()
        where = f"Airflow at {self.transport.description}"
        redirect = response.redirect_error(f"{where}, asked to {action} DAG {dag_id!r},")
        if redirect is not None:
            return redirect
        if status == 429 or status >= 500:
            return TransientTriggerError(
                f"{where} answered {status} to {action} DAG {dag_id!r}: {detail}",
                status=status,
                retry_after=response.retry_after(),
            )
        if status == 401:
            return AuthenticationError(
                f"{where} rejected {self.transport.auth.description} (401: {detail}). "
                + self.transport.auth.hint(status),
                status=status,
            )
        if status == 403:
            return AuthorizationError(
                f"{where} refused {self.transport.auth.description} permission to {action} DAG "
                f"{dag_id!r} (403: {detail}). " + self.transport.auth.hint(status),
                status=status,
            )
        if (status == 404 and "/api/v1 has been removed" in detail) or status == 405:
            # Airflow 3 answers 404 to GET and 405 to POST under the /api/v1 it no longer has.
            return ApiVersionError(
                f"{where} has no {self.api_version} API for this call ({status}: {detail}): on "
                "Airflow 3 set AIRFLOW_API_VERSION=v2, or unset it to detect the version.",
                status=status,
            )
        # Airflow's "no such DAG" is a JSON problem; any other 404 may be an API it lacks.
        if status == 404 and not isinstance(response.json(), dict) and not self._api_answers():
            return ApiVersionError(
                f"{where} has no {self.api_version} API ({status} for DAG {dag_id!r}, and for "
                f"{_VERSION_PROBE[self.api_version]} too): unset AIRFLOW_API_VERSION so that "
                "dagtrigger detects the version, or set v1 for Airflow 2 and v2 for Airflow 3.",
                status=status,
            )
        if status == 404:
            return DagNotFoundError(
                f"DAG {dag_id!r} was not found at {where} (404: {detail}). Check the DAG id (DAG_ID "
                "or the route's dag_id), that its file is in the DAGs folder and has no import "
                "errors (Airflow UI: Import errors), and that Airflow has parsed it.",
                status=status,
            )
        if status in (400, 422):
            return ConfRejectedError(
                f"{where} rejected the run for DAG {dag_id!r} ({status}: {detail}). If the DAG "
                "declares params, make the conf match them (route conf / replace_conf).",
                status=status,
            )
        return PermanentTriggerError(
            f"{where} answered {status} to {action} DAG {dag_id!r}: {detail}", status=status
        )


def _trigger_body(
    version: str,
    dag_run_id: str | None,
    conf: Mapping[str, Any],
    note: str | None,
    conf_json: str | None = None,
) -> dict[str, Any] | EncodedJson:
    body: dict[str, str | None]
    if version == "experimental":
        # "false" keeps sub-second execution dates, so two events in one second do not clash.
        body = {"replace_microseconds": "false"}
        if dag_run_id is not None:
            body["run_id"] = dag_run_id
    else:
        body = {}
        if dag_run_id is not None:
            body["dag_run_id"] = dag_run_id
        if version == "v2":
            # Airflow 3 requires the key; null means "no data interval", right for events.
            body["logical_date"] = None
            if note is not None:
                body["note"] = note
    value = {"conf": dict(conf), **body}
    if conf_json is None:
        return value
    rest = "".join(f",{encode_basestring_ascii(k)}:{_json_text(v)}" for k, v in body.items())
    return EncodedJson(value, '{"conf":' + conf_json + rest + "}")


def _json_text(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


def _is_conflict(version: str, response: Response) -> bool:
    if response.status == 409:
        return True
    # Airflow 1.10 reports an existing run id as 400 "Run id ... already exists".
    return (
        version == "experimental"
        and response.status == 400
        and "already exists" in response.detail()
    )


def _run_id_of(run: Mapping[str, Any], fallback: str | None) -> str:
    value = run.get("dag_run_id") or run.get("run_id") or fallback
    return str(value)
