"""Real Airflow 2 and 3, started once per test session on loopback and stopped at its end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dagtrigger.dispatch import Dispatcher
from dagtrigger.runtime import build_dispatcher
from dagtrigger.settings import Settings
from tools.local_airflow import VERSIONS, LocalAirflow

EXAMPLE_DAG_IDS = ("dagtrigger_example", "dagtrigger_sales", "dagtrigger_strict")


@pytest.fixture(scope="session")
def airflow_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalAirflow]]:
    servers = {
        major: LocalAirflow(major, tmp_path_factory.mktemp(f"airflow{major}")) for major in VERSIONS
    }
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            for started in [
                pool.submit(s.start, dag_ids=EXAMPLE_DAG_IDS) for s in servers.values()
            ]:
                started.result()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(params=sorted(VERSIONS), ids=lambda major: f"airflow{major}")
def airflow(
    request: pytest.FixtureRequest, airflow_servers: dict[str, LocalAirflow]
) -> LocalAirflow:
    return airflow_servers[request.param]


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


@pytest.fixture
def make_dispatcher(airflow: LocalAirflow) -> Callable[..., Dispatcher]:
    def make(**overrides: str) -> Dispatcher:
        return build_dispatcher(Settings.from_env(airflow_env(airflow, **overrides)))

    return make


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
