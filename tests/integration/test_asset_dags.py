"""The example DAGs scheduled on data, proven on real Airflow by REST alone.

Events are recorded the way a client would record them (Airflow 3: POST /api/v2/assets/events,
Airflow 2: POST /api/v1/datasets/events); the DAGs must run with the events' `extra`, and the
partitioned DAG (Airflow 3.3+) once per day, only when all 24 hourly partitions have arrived.
The Airflow is shared with other tests, which may record events on the same assets: each test
looks only at its own events (its own event ids, its own day) and leaves the DAGs paused.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.helpers import read_api
from tools.local_airflow import LocalAirflow

pytestmark = pytest.mark.airflow

CONSUMER = "dagtrigger_asset_consumer"
DAILY = "dagtrigger_daily_sales"
SALES_URI = "gs://acme-landing/sales"
HOURLY_URI = "gs://acme-landing/sales_hourly"


def _poll(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := probe()) is not None:
            return found
        time.sleep(interval)
    raise AssertionError(f"{what}: not after {timeout:g} s")


def _wait_for_dag(airflow: LocalAirflow, dag_id: str) -> None:
    """The harness waits for the direct-trigger DAGs only; these may be parsed a little later."""
    _poll(lambda: airflow.call("GET", f"/dags/{dag_id}")[0] == 200 or None, 120, f"DAG {dag_id}")


@contextmanager
def _unpaused(airflow: LocalAirflow, dag_id: str) -> Iterator[None]:
    """Events for a paused DAG queue nothing, so the DAG is unpaused before they are recorded."""
    _wait_for_dag(airflow, dag_id)
    status, body = airflow.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
    assert status == 200, body
    try:
        yield
    finally:
        airflow.call("PATCH", f"/dags/{dag_id}", {"is_paused": True})


def _asset_id(airflow: LocalAirflow, uri: str) -> int:
    """The v2 filters are SQL LIKE patterns (substring, `_` and `%` match anything), so the exact
    URI is picked out of what they return."""
    body = read_api(airflow, "/assets", uri_pattern=uri, limit=100)
    exact = [asset["id"] for asset in body["assets"] if asset["uri"] == uri]
    assert len(exact) == 1, body
    return int(exact[0])


def _run_result(airflow: LocalAirflow, dag_id: str, run_id: str, task_id: str) -> Any:
    run_path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"

    def finished() -> str | None:
        state = str(read_api(airflow, run_path)["state"])
        return state if state in ("success", "failed") else None

    state = _poll(finished, 180, f"run {run_id} of {dag_id} finished")
    assert state == "success", f"run {run_id} of {dag_id}: {state}"
    xcom = read_api(airflow, f"{run_path}/taskInstances/{task_id}/xcomEntries/return_value")
    return json.loads(xcom["value"])


def _object_extra(event_id: str, name: str) -> dict[str, Any]:
    """The default conf dagtrigger puts into `extra` for a GCS object (the fields the DAGs read)."""
    return {
        "provider": "gcs",
        "event_id": event_id,
        "event_type": "google.cloud.storage.object.v1.finalized",
        "bucket": "acme-landing",
        "name": name,
        "uri": f"gs://acme-landing/{name}",
        "version": "1764000000000001",
    }


def test_an_asset_event_runs_the_consumer_with_its_extra(airflow: LocalAirflow) -> None:
    event_id = f"asset-dag-{secrets.token_hex(4)}"
    extra = _object_extra(event_id, "sales/2026-11-20.csv")
    with _unpaused(airflow, CONSUMER):
        if airflow.major == "3":
            asset_id = _asset_id(airflow, SALES_URI)
            asset = read_api(airflow, f"/assets/{asset_id}")
            assert CONSUMER in {ref["dag_id"] for ref in asset["scheduled_dags"]}
            status, event = airflow.call(
                "POST", "/assets/events", {"asset_id": asset_id, "extra": extra}
            )
            events_path, listed, run_key = "/assets/events", "asset_events", "run_id"
            # Airflow 3 can list from a time on: the event stays on the first page however many
            # events other tests record meanwhile.
            params = {"asset_id": asset_id, "timestamp_gte": event["timestamp"]}
        else:
            dataset = read_api(airflow, f"/datasets/{quote(SALES_URI, safe='')}")
            assert CONSUMER in {ref["dag_id"] for ref in dataset["consuming_dags"]}
            status, event = airflow.call(
                "POST", "/datasets/events", {"dataset_uri": SALES_URI, "extra": extra}
            )
            events_path, listed, run_key = "/datasets/events", "dataset_events", "dag_run_id"
            params = {"dataset_id": dataset["id"], "order_by": "-timestamp"}
        assert status == 200, event
        assert event["extra"] == {**extra, "from_rest_api": True}

        def run_of_my_event() -> str | None:
            body = read_api(airflow, events_path, limit=100, **params)
            (mine,) = [e for e in body[listed] if e["id"] == event["id"]]
            runs = [r[run_key] for r in mine["created_dagruns"] if r["dag_id"] == CONSUMER]
            return runs[0] if runs else None

        run_id = _poll(run_of_my_event, 120, "a consumer run for the event")
        landed = _run_result(airflow, CONSUMER, run_id, "read_events")
    mine = {key: extra[key] for key in ("provider", "event_id", "bucket", "name", "uri", "version")}
    assert mine in landed


def _daily_runs(airflow: LocalAirflow, day: str) -> list[dict[str, Any]]:
    body = read_api(airflow, f"/dags/{DAILY}/dagRuns", partition_key_pattern=day, limit=100)
    return [run for run in body["dag_runs"] if run["partition_key"] == day]


def test_the_daily_dag_runs_once_when_all_24_hours_have_landed(airflow: LocalAirflow) -> None:
    if airflow.major != "3":
        status, _ = airflow.call("GET", f"/dags/{DAILY}")
        assert status == 404, "the partitioned example must define no DAG before Airflow 3.3"
        pytest.skip("partitioned asset timetables with windows need Airflow 3.3")
    # A day of its own, so that no other test's events complete or disturb it.
    day = (date(2000, 1, 1) + timedelta(days=secrets.randbelow(20_000))).isoformat()
    hours = [f"{day}T{hour:02d}" for hour in range(24)]
    order = sorted(hours, key=lambda _: secrets.randbelow(1_000_000))  # out of order
    last = order.pop()
    asset_id = _asset_id(airflow, HOURLY_URI)

    def record(key: str) -> None:
        name = f"sales/day={day}/hour={key[-2:]}/part-0001.parquet"
        body = {"asset_id": asset_id, "partition_key": key, "extra": _object_extra(key, name)}
        status, reply = airflow.call("POST", "/assets/events", body)
        assert status == 200, reply

    with _unpaused(airflow, DAILY):
        for key in order + order[:5]:  # 23 hours, five of them twice
            record(key)
        time.sleep(5)  # several scheduler loops (heartbeat 1 s): time enough to start a run early
        assert _daily_runs(airflow, day) == [], f"the day ran before {last} arrived"

        record(last)
        runs = _poll(lambda: _daily_runs(airflow, day) or None, 120, f"the run for {day}")
        result = _run_result(airflow, DAILY, runs[0]["dag_run_id"], "load_day")
        time.sleep(2)
        assert len(_daily_runs(airflow, day)) == 1
    assert result["day"] == day
    assert result["hours"] == hours
    assert result["events"] == 24 + 5
    assert len(result["objects"]) == 24


def test_asset_filters_are_like_patterns_and_event_bodies_are_strict(
    airflow: LocalAirflow,
) -> None:
    """What a client has to know: a URI pattern matches other URIs too (a substring match, where
    `_` matches any character), and a body with a field the server does not know is refused."""
    _wait_for_dag(airflow, CONSUMER)
    if airflow.major == "3":
        _wait_for_dag(airflow, DAILY)
        for pattern in (SALES_URI, "gs://acme_landing/sales"):
            matched = {
                asset["uri"]
                for asset in read_api(airflow, "/assets", uri_pattern=pattern)["assets"]
            }
            assert {SALES_URI, HOURLY_URI} <= matched, pattern
        body = {"asset_id": _asset_id(airflow, SALES_URI), "dedupe": "x"}
        status, reply = airflow.call("POST", "/assets/events", body)
        assert status == 422 and reply["detail"][0]["type"] == "extra_forbidden", reply
    else:
        matched = read_api(airflow, "/datasets", uri_pattern="gs://acme_landing/sales")["datasets"]
        assert SALES_URI in {dataset["uri"] for dataset in matched}
        body = {"dataset_uri": SALES_URI, "dedupe": "x"}
        status, reply = airflow.call("POST", "/datasets/events", body)
        assert status == 400 and "Unknown field" in reply["detail"], reply
    errors = read_api(airflow, "/importErrors")["import_errors"]
    mine = ("dagtrigger_asset.py", "dagtrigger_partitioned.py")
    assert not [e["filename"] for e in errors if e["filename"].endswith(mine)]
