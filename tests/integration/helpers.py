"""Reading back from Airflow what dagtrigger did."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from tools.local_airflow import REPO, LocalAirflow


def airflow_env(airflow: LocalAirflow, **overrides: str) -> dict[str, str]:
    """The environment a deployment pointed at this Airflow would have (admin user)."""
    env = {
        "AIRFLOW_URL": airflow.url,
        "AIRFLOW_USERNAME": "admin",
        "AIRFLOW_PASSWORD": airflow.admin_password,
        "DAG_ID": "dagtrigger_example",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def read_api(airflow: LocalAirflow, path: str, timeout: float = 60, **params: Any) -> Any:
    """A GET of Airflow's API, tried again on a timeout or a 5xx: Airflow is slow when the machine
    is busy, and Airflow 3 (up to 3.3.2 at least) answers GET /assets/events with 500 while a run
    an event created is queued (a run not yet started has no start_date, which the response
    requires; apache/airflow#71360)."""
    url = f"{path}?{urlencode(params)}" if params else path
    deadline = time.monotonic() + timeout
    while True:
        status, body = airflow.call("GET", url)
        if status == 200:
            return body
        if (status and status < 500) or time.monotonic() > deadline:
            raise AssertionError(f"GET {url}: {status} {body}")
        time.sleep(0.5)


def read_run(airflow: LocalAirflow, dag_id: str, run_id: str) -> Mapping[str, Any] | None:
    status, body = airflow.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
    return body if status == 200 else None


def count_runs(airflow: LocalAirflow, dag_id: str) -> int:
    status, body = airflow.call("GET", f"/dags/{dag_id}/dagRuns?limit=1")
    assert status == 200, body
    return int(body["total_entries"])


def wait_for_state(
    airflow: LocalAirflow, dag_id: str, run_id: str, states: tuple[str, ...], timeout: float = 180
) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        run = read_run(airflow, dag_id, run_id)
        state = run and run.get("state")
        if state in states:
            return str(state)
        time.sleep(1)
    raise AssertionError(f"run {run_id} still {state} after {timeout} s")


def drop_queued_runs(airflow: LocalAirflow, dag_id: str) -> None:
    """Delete the runs earlier tests left queued, so an unpaused DAG runs only the next one."""
    while True:
        status, body = airflow.call("GET", f"/dags/{dag_id}/dagRuns?state=queued&limit=100")
        assert status == 200, body
        if not body["dag_runs"]:
            return
        for run in body["dag_runs"]:
            status, reply = airflow.call("DELETE", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}")
            assert status in (200, 204), reply


def lambda_handler() -> Callable[[Any, Any], Any]:
    """The deployed Lambda entry point, functions/lambda_function.py, as the runtime loads it."""
    sys.path.insert(0, str(REPO / "functions"))
    try:
        import lambda_function
    finally:
        sys.path.remove(str(REPO / "functions"))
    return lambda_function.handler  # type: ignore[no-any-return]
