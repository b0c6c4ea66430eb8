"""Real Airflow 2 and 3, started once per test session on loopback and stopped at its end."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import pytest

from dagtrigger.dispatch import Dispatcher
from dagtrigger.runtime import build_dispatcher
from dagtrigger.settings import Settings
from tests.integration.helpers import airflow_env
from tools.local_airflow import VERSIONS, LocalAirflow

EXAMPLE_DAG_IDS = ("dagtrigger_example", "dagtrigger_sales", "dagtrigger_strict")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fault and load tests last: the SQLite Airflow they hammer is shared with every other test."""
    items.sort(key=lambda item: item.get_closest_marker("chaos") is not None)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def airflow_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalAirflow]]:
    servers = {
        major: LocalAirflow(major, tmp_path_factory.mktemp(f"airflow{major}")) for major in VERSIONS
    }
    # A run stopped with SIGTERM (a CI timeout, `timeout`, `kill`) unwinds like Ctrl-C, so the
    # servers below are stopped: they run in sessions of their own and would outlive pytest.
    previous = signal.signal(signal.SIGTERM, _interrupt)
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
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(params=sorted(VERSIONS), ids=lambda major: f"airflow{major}")
def airflow(
    request: pytest.FixtureRequest, airflow_servers: dict[str, LocalAirflow]
) -> LocalAirflow:
    return airflow_servers[request.param]


@pytest.fixture
def make_dispatcher(airflow: LocalAirflow) -> Callable[..., Dispatcher]:
    def make(**overrides: str) -> Dispatcher:
        return build_dispatcher(Settings.from_env(airflow_env(airflow, **overrides)))

    return make
