"""Routes that record asset events (Airflow 3) and dataset events (Airflow 2), on real Airflow:
through the Cloud Functions and Lambda entry points, once per event however often it arrives,
into the example DAGs scheduled on the asset (examples/dags/dagtrigger_asset.py and
dagtrigger_partitioned.py)."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from dagtrigger import runtime
from dagtrigger.assets import IDENTITY_KEY
from dagtrigger.dispatch import Dispatcher
from dagtrigger.errors import ConfigurationError
from dagtrigger.events import normalise
from dagtrigger.run_id import build_dag_run_id
from tests.integration.functions_server import FunctionsServer
from tests.integration.helpers import lambda_handler, read_api, wait_for_state
from tests.standins.aws_lambda import LambdaContext
from tests.standins.google_composer import (
    COMPOSER1_ENVIRONMENT,
    ENVIRONMENT,
    SERVICE_ACCOUNT,
    Google,
)
from tests.standins.mwaa import MwaaEnvironment, MwaaStandin
from tools.local_airflow import LocalAirflow

pytestmark = pytest.mark.airflow

LANDING = "gs://acme-landing/sales"  # the asset dagtrigger_asset_consumer is scheduled on
HOURLY = "gs://acme-landing/sales_hourly"  # dagtrigger_daily_sales's, partitioned by hour
CONSUMER = "dagtrigger_asset_consumer"
ENV = "dagtrigger-assets"
MWAA_VERSIONS = {"2": "2.10.3", "3": "3.0.6"}  # what MWAA offers; the Airflow behind is 2.11, 3.3
DAILY = "dagtrigger_daily_sales"
LANDING_ROUTE = {"name": "landing", "match": {"prefix": "landing/"}, "asset": LANDING}
HOURLY_ROUTE = {
    "name": "hourly-sales",
    "match": {"regex": r"^sales/day=(?P<day>[0-9-]+)/hour=(?P<hour>[0-9]{2})/"},
    "asset": HOURLY,
    "partition_key": "{day}T{hour}",
}


def _routes(*routes: Mapping[str, Any]) -> str:
    return json.dumps(list(routes))


def gcs_cloudevent(name: str, generation: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A binary-mode Cloud Storage CloudEvent: its headers' attributes, and its data."""
    attributes = {
        "specversion": "1.0",
        "type": "google.cloud.storage.object.v1.finalized",
        "source": "//storage.googleapis.com/projects/_/buckets/acme-landing",
        "subject": f"objects/{name}",
        "id": f"gcs-{generation}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return attributes, {"bucket": "acme-landing", "name": name, "generation": generation}


def structured(name: str, generation: str) -> dict[str, Any]:
    attributes, data = gcs_cloudevent(name, generation)
    return {**attributes, "data": data}


def asset_id(airflow: LocalAirflow, uri: str) -> int:
    kind = "assets" if airflow.major == "3" else "datasets"
    body = read_api(airflow, f"/{kind}", uri_pattern=uri, limit=100)
    [found] = [item for item in body[kind] if item["uri"] == uri]
    return int(found["id"])


def events_of(airflow: LocalAirflow, uri: str, key: str) -> list[dict[str, Any]]:
    """The asset's events that hold this event's identity."""
    kind, events = (
        ("assets", "asset_events") if airflow.major == "3" else ("datasets", "dataset_events")
    )
    filter_name = "asset_id" if airflow.major == "3" else "dataset_id"
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        query = {filter_name: asset_id(airflow, uri), "limit": 100, "offset": offset}
        body = read_api(airflow, f"/{kind}/events", **query)
        found += [e for e in body[events] if (e.get("extra") or {}).get(IDENTITY_KEY) == key]
        if len(body[events]) < 100:
            return found
        offset += 100


def unpause(airflow: LocalAirflow, dag_id: str, timeout: float = 120) -> None:
    """Unpause the DAG once Airflow has parsed it (the example DAGs load with the others)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = airflow.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status == 200, body


def wait_for_consumer_runs(
    airflow: LocalAirflow, uri: str, key: str, timeout: float = 120
) -> list[str]:
    """The runs the event's asset event created, once the scheduler has created one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [event] = events_of(airflow, uri, key)
        runs = [
            run.get("dag_run_id") or run["run_id"] for run in event.get("created_dagruns") or []
        ]
        if runs:
            return runs
        time.sleep(1)
    raise AssertionError(f"no run consumed the asset event of {key} in {timeout} s")


def returned(airflow: LocalAirflow, dag_id: str, run_id: str, task_id: str) -> Any:
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    status, body = airflow.call("GET", path)
    assert status == 200, body
    value = body["value"]
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
def lambda_on_mwaa(
    airflow: LocalAirflow, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, Any]], Any]]:
    """The Lambda entry point with the landing route, through MWAA's invoke_rest_api."""
    environment = MwaaEnvironment(
        ENV, airflow.url, MWAA_VERSIONS[airflow.major], airflow.admin_headers
    )
    with MwaaStandin({ENV: environment}) as standin:
        for name, value in standin.client_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AIRFLOW_URL", raising=False)
        monkeypatch.setenv("MWAA_ENVIRONMENT", ENV)
        monkeypatch.setenv("DAGTRIGGER_ROUTES", _routes(LANDING_ROUTE))
        runtime.reset()
        handler = lambda_handler()
        yield lambda event: handler(event, LambdaContext())
    runtime.reset()


@pytest.fixture
def function(airflow: LocalAirflow, tmp_path: Path) -> Iterator[FunctionsServer]:
    env = {
        "AIRFLOW_URL": airflow.url,
        "AIRFLOW_USERNAME": "admin",
        "AIRFLOW_PASSWORD": airflow.admin_password,
        "DAGTRIGGER_ROUTES": _routes(LANDING_ROUTE),
    }
    with FunctionsServer("handle_cloud_event", env, tmp_path / "function.log") as server:
        yield server


def test_a_gcs_event_delivered_three_times_records_one_asset_event_and_one_consumer_run(
    airflow: LocalAirflow, function: FunctionsServer
) -> None:
    unpause(airflow, CONSUMER)
    name = f"landing/{uuid.uuid4().hex}/orders.csv"
    generation = str(random.randrange(10**15, 10**16))

    statuses = [function.post_binary(*gcs_cloudevent(name, generation)) for _ in range(3)]
    logged = [e for e in function.log_entries() if e.get("asset") == LANDING]
    key = identity_of(structured(name, generation))

    assert statuses == [200, 200, 200]
    assert [e["outcome"] for e in logged] == ["created", "duplicate", "duplicate"]
    [recorded] = events_of(airflow, LANDING, key)
    assert recorded["extra"]["uri"] == f"gs://acme-landing/{name}"
    [run_id] = wait_for_consumer_runs(airflow, LANDING, key)
    assert wait_for_state(airflow, CONSUMER, run_id, ("success", "failed")) == "success"
    landed = returned(airflow, CONSUMER, run_id, "read_events")
    assert {"uri": f"gs://acme-landing/{name}", "version": generation}.items() <= next(
        item for item in landed if item["name"] == name
    ).items()


def identity_of(payload: Any) -> str:
    """The event's identity, kept in its asset event's extra: the run id it would start."""
    [event] = normalise(payload).events
    return build_dag_run_id(event)


def test_s3_events_through_lambda_on_mwaa_record_one_dataset_or_asset_event(
    airflow: LocalAirflow, lambda_on_mwaa: Callable[[dict[str, Any]], Any]
) -> None:
    event = s3_put(f"landing/{uuid.uuid4().hex}.csv")

    answers = [lambda_on_mwaa(event) for _ in range(3)]

    assert [a["asset_events"][0]["outcome"] for a in answers] == [
        "created",
        "duplicate",
        "duplicate",
    ]
    assert answers[0]["runs"] == []
    ids = {a["asset_events"][0]["asset_event_id"] for a in answers}
    assert len(ids) == 1 and None not in ids


def test_a_route_naming_no_known_asset_fails_the_event_with_the_fix(
    airflow: LocalAirflow, make_dispatcher: Callable[..., Dispatcher]
) -> None:
    missing = f"gs://acme-landing/missing_{uuid.uuid4().hex}"
    dispatcher = make_dispatcher(
        DAG_ID="", DAGTRIGGER_ROUTES=_routes({**LANDING_ROUTE, "asset": missing})
    )

    report = dispatcher.handle(structured(f"landing/{uuid.uuid4().hex}", "1"))

    [error] = report.permanent_errors
    assert error.problem.startswith(f"{'Asset' if airflow.major == '3' else 'Dataset'} {missing!r}")
    assert error.fix is not None and "exactly as a DAG declares it" in error.fix


def test_a_partition_key_on_airflow_2_is_a_configuration_error_that_keeps_the_event(
    airflow: LocalAirflow, make_dispatcher: Callable[..., Dispatcher]
) -> None:
    if airflow.major == "3":
        pytest.skip("Airflow 3.3 takes partition keys (the next test)")
    dispatcher = make_dispatcher(
        DAG_ID="", DAGTRIGGER_ROUTES=_routes({**HOURLY_ROUTE, "asset": LANDING})
    )

    with pytest.raises(ConfigurationError) as caught:
        dispatcher.handle(structured("sales/day=2026-11-20/hour=13/part-0001.parquet", "1"))

    assert "whose asset events have no partition key" in caught.value.problem
    assert caught.value.fix is not None and "Airflow 3.2 or later" in caught.value.fix


def test_the_daily_dag_runs_once_when_all_24_hours_have_arrived_out_of_order_some_twice(
    airflow: LocalAirflow, make_dispatcher: Callable[..., Dispatcher]
) -> None:
    if airflow.major == "2":
        pytest.skip("partitioned asset timetables are Airflow 3.3's")
    unpause(airflow, DAILY)
    dispatcher = make_dispatcher(DAG_ID="", DAGTRIGGER_ROUTES=_routes(HOURLY_ROUTE))
    day = f"20{random.randrange(40, 99)}-0{random.randrange(1, 10)}-1{random.randrange(0, 10)}"
    hours = [f"{hour:02d}" for hour in range(24)]
    random.shuffle(hours)
    last, *first_23 = hours

    def deliver(hour: str, times: int = 1) -> list[str]:
        name = f"sales/day={day}/hour={hour}/part-0001.parquet"
        reports = [dispatcher.handle(structured(name, f"{hour}1")) for _ in range(times)]
        return [o.outcome for r in reports for o in r.asset_outcomes]

    outcomes = [deliver(hour, times=2 if i % 5 == 0 else 1) for i, hour in enumerate(first_23)]
    time.sleep(15)  # several scheduler loops: the day must not run on 23 hours
    runs_before_last = _runs_of_day(airflow, day)
    outcomes.append(deliver(last))
    run_ids = _wait_for_runs_of_day(airflow, day)

    assert runs_before_last == []
    assert all(o[0] == "created" and set(o[1:]) <= {"duplicate"} for o in outcomes), outcomes
    [run_id] = run_ids
    assert wait_for_state(airflow, DAILY, run_id, ("success", "failed")) == "success"
    loaded = returned(airflow, DAILY, run_id, "load_day")
    assert loaded["day"] == day
    assert loaded["hours"] == [f"{day}T{hour:02d}" for hour in range(24)]
    assert len(loaded["objects"]) == 24
    time.sleep(5)
    assert _runs_of_day(airflow, day) == run_ids  # and no second run after it


def _runs_of_day(airflow: LocalAirflow, day: str) -> list[str]:
    status, body = airflow.call("GET", f"/dags/{DAILY}/dagRuns?limit=100&order_by=-id")
    assert status == 200, body
    return [r["dag_run_id"] for r in body["dag_runs"] if r.get("partition_key") == day]


def _wait_for_runs_of_day(airflow: LocalAirflow, day: str, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _runs_of_day(airflow, day)
        if runs:
            return runs
        time.sleep(1)
    raise AssertionError(f"{DAILY} did not run for {day} in {timeout} s")


def s3_put(key: str) -> dict[str, Any]:
    """An S3 ObjectCreated notification, as Lambda receives it, happening now."""
    sequencer = random.randrange(16**18)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "eu-west-1",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "acme-raw-eu", "arn": "arn:aws:s3:::acme-raw-eu"},
                    "object": {"key": key, "size": 42, "sequencer": f"{sequencer:018X}"},
                },
            }
        ]
    }


def _through_google(
    google: Google, tmp_path: Path, composer: str, name: str
) -> tuple[list[str], str, list[str]]:
    """Delivers a GCS event twice to the function on Composer `composer`: the asset outcomes it
    logged, the event's identity, and the requests the front let through for the service
    account ("METHOD path", without the query)."""
    env = google.env(
        COMPOSER_ENVIRONMENT=composer, DAG_ID="", DAGTRIGGER_ROUTES=_routes(LANDING_ROUTE)
    )
    event = structured(name, str(random.randrange(10**15, 10**16)))
    with FunctionsServer("handle_cloud_event", env, tmp_path / "function.log") as function:
        statuses = [function.post_structured(event) for _ in range(2)]
        logged = [e for e in function.log_entries() if e.get("asset") == LANDING]
    assert statuses == [200, 200], logged
    front = google.composer if composer == ENVIRONMENT else google.iap
    seen = [
        f"{method} {path.split('?')[0]}"
        for method, path, email in front.requests_seen
        if email == SERVICE_ACCOUNT
    ]
    return [e["outcome"] for e in logged], identity_of(event), seen


def _through_mwaa_web(
    airflow: LocalAirflow, monkeypatch: pytest.MonkeyPatch, key: str
) -> tuple[list[str], str, MwaaStandin]:
    """Delivers an S3 event twice to the Lambda logged in to MWAA's web server."""
    environment = MwaaEnvironment(
        ENV, airflow.url, MWAA_VERSIONS[airflow.major], airflow.admin_headers
    )
    event = s3_put(key)
    with MwaaStandin({ENV: environment}) as standin:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AIRFLOW_URL", "DAG_ID"):
            monkeypatch.delenv(name, raising=False)
        for name, value in standin.client_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("MWAA_ENVIRONMENT", ENV)
        monkeypatch.setenv("AIRFLOW_AUTH", "mwaa-web")
        monkeypatch.setenv("DAGTRIGGER_ROUTES", _routes(LANDING_ROUTE))
        runtime.reset()
        try:
            handler = lambda_handler()
            answers = [handler(event, LambdaContext()) for _ in range(2)]
        finally:
            runtime.reset()
    outcomes = [o["outcome"] for a in answers for o in a["asset_events"]]
    return outcomes, identity_of(event), standin


@pytest.mark.parametrize("path", ["composer", "composer1-iap", "mwaa-web"])
def test_every_auth_path_records_one_asset_event_and_finds_the_redelivery(
    airflow: LocalAirflow,
    path: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Composer 2/3 (a Google access token), Composer 1 behind IAP (an ID token) and MWAA's web
    login (a session): each reads the asset's events and records one, on Airflow 2 and 3."""
    name = f"landing/{path}/{uuid.uuid4().hex}.csv"
    if path == "mwaa-web":
        outcomes, key, standin = _through_mwaa_web(airflow, monkeypatch, name)
        assert standin.logins == 1, "one web login serves the lookups, the reads and the post"
        assert standin.invocations == [], "web login talks to the web server, not invoke_rest_api"
        uri = f"s3://acme-raw-eu/{name}"
    else:
        google: Google = request.getfixturevalue("google")
        composer = ENVIRONMENT if path == "composer" else COMPOSER1_ENVIRONMENT
        outcomes, key, seen = _through_google(google, tmp_path, composer, name)
        events = "/api/v2/assets/events" if airflow.major == "3" else "/api/v1/datasets/events"
        assert {f"GET {events}", f"POST {events}"} <= set(seen), seen
        uri = f"gs://acme-landing/{name}"

    assert outcomes == ["created", "duplicate"]
    [recorded] = events_of(airflow, LANDING, key)
    assert recorded["extra"]["uri"] == uri
