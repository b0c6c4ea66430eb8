"""`make demo`: a local Airflow 3, sample GCS and S3 events through dagtrigger, the runs they started.

Each event is sent twice, as the clouds sometimes do: the second delivery is recognised as a
duplicate and starts nothing. Besides the runs started directly, a route records an asset event
for the GCS sample, and the DAG scheduled on that asset runs on it (data-aware scheduling).
With --keep, Airflow stays up for you to explore until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Mapping
from typing import Any

from dagtrigger.dispatch import Dispatcher
from dagtrigger.runtime import build_dispatcher
from dagtrigger.settings import Settings
from tools.local_airflow import REPO, LocalAirflow

SAMPLES = [REPO / "examples" / "events" / name for name in ("gcs_finalized.json", "s3_put.json")]
ROUTES = REPO / "examples" / "routes.json"
ASSET = "gs://acme-landing/sales"
CONSUMER = "dagtrigger_asset_consumer"  # examples/dags/dagtrigger_asset.py, scheduled on ASSET
ASSET_ROUTES = [{"name": "sales-landed", "match": {"prefix": "sales/"}, "asset": ASSET}]
DAGS = ("dagtrigger_example", "dagtrigger_sales", CONSUMER)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave Airflow running until Ctrl-C")
    args = parser.parse_args(argv)

    home = REPO / ".demo" / "airflow3"
    shutil.rmtree(home, ignore_errors=True)
    airflow = LocalAirflow("3", home)
    print(f"Starting Airflow {airflow.version} on {airflow.url} (logs in {airflow.log_dir}) ...")
    try:
        airflow.start(dag_ids=DAGS)
        for dag_id in DAGS:
            airflow.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        started = _send_samples(airflow)
        recorded = _record_asset_event(airflow)
        _show_runs(airflow, started, recorded)
        print(f"\nAirflow UI: {airflow.url}  (user admin, password {airflow.admin_password})")
        if args.keep:
            print("Airflow keeps running; press Ctrl-C to stop it.")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping Airflow ...")
        airflow.stop()
    return 0


def _dispatcher(airflow: LocalAirflow, routes: str) -> Dispatcher:
    settings = Settings.from_env(
        {
            "AIRFLOW_URL": airflow.url,
            "AIRFLOW_USERNAME": "admin",
            "AIRFLOW_PASSWORD": airflow.admin_password,
            "DAGTRIGGER_ROUTES": routes,
        }
    )
    return build_dispatcher(settings)


def _send_samples(airflow: LocalAirflow) -> list[tuple[str, str]]:
    dispatcher = _dispatcher(airflow, str(ROUTES))
    started: list[tuple[str, str]] = []
    print(f"\nRoutes: {ROUTES.relative_to(REPO)}")
    for sample in SAMPLES:
        payload = json.loads(sample.read_text())
        for delivery in ("first delivery", "redelivery"):
            report = dispatcher.handle(payload)
            print(f"\n{sample.relative_to(REPO)} ({delivery}):")
            for outcome in report.outcomes:
                print(f"  {outcome.outcome:<9} {outcome.run.dag_id:<25} {outcome.run.dag_run_id}")
                if outcome.error is not None:
                    print(f"            {outcome.error}")
                if outcome.outcome == "created":
                    started.append((outcome.run.dag_id, outcome.run.dag_run_id))
            for reason in report.plan.ignored:
                print(f"  ignored   {reason}")
    return started


def _record_asset_event(airflow: LocalAirflow) -> Mapping[str, Any] | None:
    """Sends the GCS sample through a route that records an asset event; returns the event."""
    dispatcher = _dispatcher(airflow, json.dumps(ASSET_ROUTES))
    sample = SAMPLES[0]
    payload = json.loads(sample.read_text())
    recorded = None
    print(f"\nRoute: {json.dumps(ASSET_ROUTES[0])}")
    for delivery in ("first delivery", "redelivery"):
        report = dispatcher.handle(payload)
        print(f"\n{sample.relative_to(REPO)} ({delivery}):")
        for outcome in report.asset_outcomes:
            print(f"  {outcome.outcome:<9} asset {ASSET}  (asset event {outcome.asset_event_id})")
            if outcome.error is not None:
                print(f"            {outcome.error}")
            if outcome.outcome == "created":
                recorded = outcome.asset_event
    return recorded


def _consumer_run(airflow: LocalAirflow, recorded: Mapping[str, Any]) -> str | None:
    """The run of the asset's consumer DAG that the asset event created, once there is one."""
    query = f"asset_id={recorded['asset_id']}&order_by=-timestamp&limit=100"
    status, body = airflow.call("GET", f"/assets/events?{query}")
    if status != 200:
        return None
    for event in body.get("asset_events", []):
        if event.get("id") == recorded["id"]:
            for run in event.get("created_dagruns") or []:
                return str(run.get("run_id") or run.get("dag_run_id"))
    return None


def _returned(airflow: LocalAirflow, dag_id: str, run_id: str, task_id: str) -> Any:
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    status, body = airflow.call("GET", path)
    if status != 200:
        return None
    value = body.get("value")
    return json.loads(value) if isinstance(value, str) else value


def _show_runs(
    airflow: LocalAirflow,
    started: list[tuple[str, str]],
    recorded: Mapping[str, Any] | None,
    wait: float = 120,
) -> None:
    print("\nWaiting for the runs to finish ...")
    deadline = time.monotonic() + wait
    runs: dict[tuple[str, str], dict[str, object]] = {}
    consumer_run = None
    while time.monotonic() < deadline:
        if recorded is not None and consumer_run is None:
            consumer_run = _consumer_run(airflow, recorded)
            if consumer_run is not None:
                started = [*started, (CONSUMER, consumer_run)]
        for dag_id, run_id in started:
            status, body = airflow.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if status == 200:
                runs[(dag_id, run_id)] = body
        if (
            len(runs) == len(started)
            and all(r.get("state") in ("success", "failed") for r in runs.values())
            and (recorded is None or consumer_run is not None)
        ):
            break
        time.sleep(2)
    print("\nRuns in Airflow:")
    for (dag_id, run_id), run in runs.items():
        if dag_id == CONSUMER:
            # Started by the scheduler on the asset event: what the DAG read from its extra.
            read = _returned(airflow, dag_id, run_id, "read_events") or []
            landed = [{k: e[k] for k in ("uri", "version") if k in e} for e in read]
            detail = f"read from the asset event: {json.dumps(landed)}"
        else:
            conf = run.get("conf") or {}
            assert isinstance(conf, dict)
            summary = {k: conf[k] for k in ("uri", "partition", "size") if k in conf}
            detail = f"conf: {json.dumps(summary)}"
        print(f"  {run.get('state')!s:<8} {dag_id:<25} {run_id}\n           {detail}")
    if recorded is not None and consumer_run is None:
        print(f"  {CONSUMER} did not run on asset event {recorded['id']} in {wait:g} s")


if __name__ == "__main__":
    sys.exit(main())
