"""doctor on routes that record asset events, against real Airflow 2.11 and 3.3: each asset
exists and schedules the example DAGs, a partitioned consumer takes the routes' partition keys,
and --write-check probes the permission without recording anything."""

from __future__ import annotations

import json

import pytest

from dagtrigger.doctor import CheckResult, Status, run_doctor
from tests.integration.helpers import airflow_env
from tools.local_airflow import LocalAirflow

pytestmark = pytest.mark.airflow

LANDING = "gs://acme-landing/sales"
HOURLY = "gs://acme-landing/sales_hourly"
MISSING = "gs://acme-landing/nobody_declares_this"
ROUTES = [
    {"name": "landing", "match": {"prefix": "landing/"}, "asset": LANDING},
    {
        "name": "hourly",
        "match": {"regex": r"^sales/day=(?P<day>[0-9-]+)/hour=(?P<hour>[0-9]{2})/"},
        "asset": HOURLY,
        "partition_key": "{day}T{hour}",
    },
    {"name": "missing", "match": {"prefix": "missing/"}, "asset": MISSING},
]


def doctor(airflow: LocalAirflow, **env: str) -> dict[str, CheckResult]:
    settings = airflow_env(airflow, DAG_ID="", DAGTRIGGER_ROUTES=json.dumps(ROUTES), **env)
    return {result.key: result for result in run_doctor(settings, write_check=True)}


def asset_events_of(airflow: LocalAirflow) -> int:
    path = "/assets/events?limit=1" if airflow.major == "3" else "/datasets/events?limit=1"
    status, body = airflow.call("GET", path)
    assert status == 200, body
    return int(body["total_entries"])


def set_paused(airflow: LocalAirflow, dag_id: str, paused: bool) -> None:
    status, body = airflow.call("PATCH", f"/dags/{dag_id}", {"is_paused": paused})
    assert status == 200, body


def test_doctor_checks_each_asset_its_consumers_partitions_and_the_permission(
    airflow: LocalAirflow,
) -> None:
    recorded_before = asset_events_of(airflow)
    set_paused(airflow, "dagtrigger_asset_consumer", False)

    lines = doctor(airflow)

    landing = lines[f"asset.exists:{LANDING}"]
    assert landing.status is Status.OK
    assert "schedules dagtrigger_asset_consumer" in landing.message
    missing = lines[f"asset.exists:{MISSING}"]
    assert missing.status is Status.FAIL
    assert missing.fix is not None and "exactly as a DAG declares it" in missing.fix
    assert lines[f"asset.partitions:{LANDING}"].status is Status.SKIP
    hourly = lines[f"asset.partitions:{HOURLY}"]
    if airflow.major == "3":
        assert hourly.status is Status.OK
        assert hourly.message == "partitioned consumers: dagtrigger_daily_sales"
    else:  # no DAG declares the hourly asset on Airflow 2 (partitions are Airflow 3.2's)
        assert lines[f"asset.exists:{HOURLY}"].status is Status.FAIL
        assert hourly.status is Status.SKIP
    record = lines["asset.record"]
    assert record.status is Status.OK, record
    assert "nothing recorded" in record.message
    assert asset_events_of(airflow) == recorded_before


def test_the_write_check_names_a_missing_permission(airflow: LocalAirflow) -> None:
    lines = doctor(airflow, AIRFLOW_USERNAME="viewer", AIRFLOW_PASSWORD=airflow.viewer_password)

    record = lines["asset.record"]
    assert record.status is Status.FAIL
    assert "permission to record asset events (403" in record.message
    assert lines[f"asset.exists:{LANDING}"].status is Status.OK  # reading is a viewer's right


def test_an_asset_whose_consumers_are_all_paused_is_a_warning(airflow: LocalAirflow) -> None:
    set_paused(airflow, "dagtrigger_asset_consumer", True)

    landing = doctor(airflow)[f"asset.exists:{LANDING}"]

    assert landing.status is Status.WARN
    assert "all paused" in landing.message
    assert landing.fix == "unpause dagtrigger_asset_consumer."
