"""Real Airflow 2 and 3, started once per test session on loopback and stopped at its end: on
SQLite for most tests (`airflow`), on PostgreSQL with LocalExecutor for the fault and load tests
(`postgresql_airflow_servers`); and Google's stand-ins in front of them (`google`)."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import pytest

from dagtrigger.dispatch import Dispatcher
from dagtrigger.runtime import build_dispatcher
from dagtrigger.settings import Settings
from tests.integration.helpers import airflow_env
from tests.standins.google_composer import (
    COMPOSER1_ENVIRONMENT,
    COMPOSER1_IMAGES,
    COMPOSER_IMAGES,
    ENVIRONMENT,
    IAP_CLIENT_ID,
    SERVICE_ACCOUNT,
    UNREACHABLE_ENVIRONMENT,
    Google,
)
from tests.standins.google_fronts import (
    ComposerEnvironmentsApi,
    ComposerFront,
    IapFront,
    composer_environment,
)
from tests.standins.google_tokens import GoogleTokenServer
from tools.local_airflow import VERSIONS, LocalAirflow, free_port

EXAMPLE_DAG_IDS = ("dagtrigger_example", "dagtrigger_sales", "dagtrigger_strict")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fault and load tests last: the load they put on the machine slows no other test."""
    items.sort(key=lambda item: item.get_closest_marker("chaos") is not None)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def airflow_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalAirflow]]:
    yield from _started_servers(tmp_path_factory, "sqlite")


@pytest.fixture(scope="session")
def postgresql_airflow_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, LocalAirflow]]:
    """Airflow 2 and 3 as production runs them: PostgreSQL, LocalExecutor, two API workers."""
    yield from _started_servers(tmp_path_factory, "postgresql")


def _started_servers(
    tmp_path_factory: pytest.TempPathFactory, database: str
) -> Iterator[dict[str, LocalAirflow]]:
    suffix = "" if database == "sqlite" else database
    servers = {
        major: LocalAirflow(
            major, tmp_path_factory.mktemp(f"airflow{major}{suffix}"), database=database
        )
        for major in VERSIONS
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


@pytest.fixture
def google(
    airflow: LocalAirflow, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Google]:
    """Google in front of `airflow` (see tests.standins.google_composer). Parametrized indirectly,
    the value is the lifetime of the access tokens issued, in seconds."""
    lifetime = getattr(request, "param", 3600)
    headers = airflow.admin_headers
    image, composer1_image = COMPOSER_IMAGES[airflow.major], COMPOSER1_IMAGES[airflow.major]
    with (
        GoogleTokenServer(access_token_lifetime=lifetime) as tokens,
        ComposerFront(airflow.url, tokens, headers, allowed={SERVICE_ACCOUNT}) as composer,
        IapFront(airflow.url, tokens, IAP_CLIENT_ID, headers, allowed={SERVICE_ACCOUNT}) as iap,
    ):
        closed = f"http://127.0.0.1:{free_port()}"
        environments = {
            ENVIRONMENT: composer_environment(ENVIRONMENT, composer.url, image),
            COMPOSER1_ENVIRONMENT: composer_environment(
                COMPOSER1_ENVIRONMENT, iap.url, composer1_image
            ),
            UNREACHABLE_ENVIRONMENT: composer_environment(UNREACHABLE_ENVIRONMENT, closed, image),
        }
        with ComposerEnvironmentsApi(tokens, environments, allowed={SERVICE_ACCOUNT}) as api:
            key = tokens.service_account_key(SERVICE_ACCOUNT)
            key_file = tmp_path / "key.json"
            key_file.write_text(json.dumps(key))
            sdk_config = tmp_path / "gcloud"
            sdk_config.mkdir()
            yield Google(tokens, composer, iap, api, key, key_file, sdk_config)
