"""`make demo`: a local Airflow 3, sample GCS and S3 events through dagtrigger, the runs they started.

Each event is sent twice, as the clouds sometimes do: the second delivery is recognised as a
duplicate and starts nothing. With --keep, Airflow stays up for you to explore until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time

from dagtrigger.runtime import build_dispatcher
from dagtrigger.settings import Settings
from tools.local_airflow import REPO, LocalAirflow

SAMPLES = [REPO / "examples" / "events" / name for name in ("gcs_finalized.json", "s3_put.json")]
ROUTES = REPO / "examples" / "routes.json"
DAGS = ("dagtrigger_example", "dagtrigger_sales")


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
        _show_runs(airflow, started)
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


def _send_samples(airflow: LocalAirflow) -> list[tuple[str, str]]:
    settings = Settings.from_env(
        {
            "AIRFLOW_URL": airflow.url,
            "AIRFLOW_USERNAME": "admin",
            "AIRFLOW_PASSWORD": airflow.admin_password,
            "DAGTRIGGER_ROUTES": str(ROUTES),
        }
    )
    dispatcher = build_dispatcher(settings)
    started: list[tuple[str, str]] = []
    print(f"\nRoutes: {ROUTES.relative_to(REPO)}")
    for sample in SAMPLES:
        payload = json.loads(sample.read_text())
        for delivery in ("first delivery", "redelivery"):
            report = dispatcher.handle(payload)
            print(f"\n{sample.relative_to(REPO)} ({delivery}):")
            for outcome in report.outcomes:
                print(f"  {outcome.outcome:<9} {outcome.run.dag_id:<20} {outcome.run.dag_run_id}")
                if outcome.error is not None:
                    print(f"            {outcome.error}")
                if outcome.outcome == "created":
                    started.append((outcome.run.dag_id, outcome.run.dag_run_id))
            for reason in report.plan.ignored:
                print(f"  ignored   {reason}")
    return started


def _show_runs(airflow: LocalAirflow, started: list[tuple[str, str]], wait: float = 90) -> None:
    print("\nWaiting for the runs to finish ...")
    deadline = time.monotonic() + wait
    runs: dict[tuple[str, str], dict[str, object]] = {}
    while time.monotonic() < deadline:
        for dag_id, run_id in started:
            status, body = airflow.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if status == 200:
                runs[(dag_id, run_id)] = body
        if len(runs) == len(started) and all(
            r.get("state") in ("success", "failed") for r in runs.values()
        ):
            break
        time.sleep(2)
    print("\nRuns in Airflow:")
    for (dag_id, run_id), run in runs.items():
        conf = run.get("conf") or {}
        assert isinstance(conf, dict)
        summary = {k: conf[k] for k in ("uri", "partition", "size") if k in conf}
        print(
            f"  {run.get('state')!s:<8} {dag_id:<20} {run_id}\n           conf: {json.dumps(summary)}"
        )


if __name__ == "__main__":
    sys.exit(main())
