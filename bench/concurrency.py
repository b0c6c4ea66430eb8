"""Triggers per second from one dagtrigger instance into a real Airflow, by DAGTRIGGER_CONCURRENCY.

    python -m bench.concurrency [--major 3] [--database postgresql] [--events 300] [1 4 10]

Starts Airflow (tools.local_airflow: on PostgreSQL with LocalExecutor and two API workers by
default, or on SQLite as in `make demo`), then for each concurrency sends `--events` distinct GCS
events through one dispatcher (the Cloud Functions path's core, basic auth straight to Airflow)
from 32 threads, so that the concurrency setting is what bounds the requests in flight. Prints the
triggers per second, the transient failures dagtrigger retried, and checks that Airflow holds
exactly one run per event. Airflow is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import DAG_ID, gcs_events

if TYPE_CHECKING:
    from tools.local_airflow import LocalAirflow

SENDERS = 32


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "retry", None):
            with self._lock:
                self.count += 1


def main(argv: list[str]) -> int:
    from dagtrigger.runtime import build_dispatcher
    from dagtrigger.settings import Settings
    from tools.local_airflow import LocalAirflow

    parser = argparse.ArgumentParser(prog="python -m bench.concurrency")
    parser.add_argument("--major", choices=("2", "3"), default="3")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("concurrency", type=int, nargs="*", default=[1, 4, 10])
    args = parser.parse_args(argv)

    retries = _Retries()
    logger = logging.getLogger("dagtrigger")
    logger.addHandler(retries)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    with tempfile.TemporaryDirectory(prefix="dagtrigger-bench-") as work:
        airflow = LocalAirflow(args.major, Path(work) / "airflow", database=args.database)
        try:
            airflow.start(dag_ids=(DAG_ID,))
            print(f"Airflow {airflow.version} on {args.database}, {args.events} events per row, "
                  f"{SENDERS} threads into one dispatcher")  # fmt: skip
            print("concurrency  seconds  triggers/s  retried  failed")
            events = gcs_events(1)
            for concurrency in args.concurrency:
                env = {
                    "AIRFLOW_URL": airflow.url,
                    "AIRFLOW_USERNAME": "admin",
                    "AIRFLOW_PASSWORD": airflow.admin_password,
                    "DAG_ID": DAG_ID,
                    "DAGTRIGGER_CONCURRENCY": str(concurrency),
                    "DAGTRIGGER_DEADLINE": "120",
                }
                dispatcher = build_dispatcher(Settings.from_env(env))
                warm_up, *batch = [next(events) for _ in range(args.events + 1)]
                dispatcher.handle(warm_up)  # version probe and connection, before the clock
                before_retries, before_runs = retries.count, _run_count(airflow)
                started = time.monotonic()
                with ThreadPoolExecutor(SENDERS) as pool:
                    reports = list(pool.map(dispatcher.handle, batch))
                elapsed = time.monotonic() - started
                failed = sum(o.outcome == "failed" for r in reports for o in r.outcomes)
                created = _run_count(airflow) - before_runs
                if created != len(batch) - failed:
                    raise RuntimeError(f"{len(batch)} events sent, {created} runs created")
                print(f"{concurrency:>11}  {elapsed:7.1f}  {len(batch) / elapsed:10.1f}  "
                      f"{retries.count - before_retries:>7}  {failed:>6}", flush=True)  # fmt: skip
        finally:
            airflow.stop()
    return 0


def _run_count(airflow: LocalAirflow) -> int:
    status, body = airflow.call("GET", f"/dags/{DAG_ID}/dagRuns?limit=1")
    if status != 200:
        raise RuntimeError(f"reading runs back: {status} {body}")
    return int(body["total_entries"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
