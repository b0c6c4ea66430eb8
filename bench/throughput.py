"""Sustained triggers per second into a real Airflow 3 (tools/local_airflow, on loopback).

dagtrigger's dispatcher (AIRFLOW_URL, username and password: API version detected, a JWT from
/auth/token) against the floor: one kept-alive http.client connection per thread, a JWT fetched
beforehand, and a prebuilt body per event, byte for byte what dagtrigger sends for that event
(conf, run id, note, `logical_date: null`), so Airflow does the same work for both. Both use the
same number of threads and distinct run ids; rounds alternate and last a fixed time. The worker
is `python -m bench.throughput CONFIG RESULT`; Airflow is stopped at the end, whatever happens.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.serve import REPO, child_env
from bench.stats import paired_ratios, rotated, summarise

EVENTS = REPO / "tests" / "events"
DAG_ID = "dagtrigger_example"


def measure(work: Path, rounds: int, seconds: float, threads: int) -> dict[str, Any]:
    from tools.local_airflow import LocalAirflow

    log = work / "throughput.log"
    started = time.monotonic()
    airflow = LocalAirflow("3", work / "airflow3")
    try:
        airflow.start(dag_ids=(DAG_ID,))
        startup = time.monotonic() - started
        print(f"  Airflow {airflow.version} up in {startup:.0f} s", file=sys.stderr, flush=True)
        config = {
            "url": airflow.url,
            "password": airflow.admin_password,
            "token": airflow.token(),
            "rounds": rounds,
            "seconds": seconds,
            "threads": threads,
        }
        config_file, result_file = work / "throughput.json", work / "throughput-result.json"
        config_file.write_text(json.dumps(config))
        with open(log, "ab") as errors:
            subprocess.run(
                [sys.executable, "-m", "bench.throughput", str(config_file), str(result_file)],
                cwd=REPO, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=errors, check=True, timeout=900,
            )  # fmt: skip
        result = dict(json.loads(result_file.read_text()))
        status, body = airflow.call("GET", f"/dags/{DAG_ID}/dagRuns?limit=1")
        result["runs_in_airflow"] = body.get("total_entries") if status == 200 else None
        result["airflow_version"] = airflow.version
        result["airflow_startup_s"] = startup
        return result
    finally:
        airflow.stop()


class _Supply:
    """Hands out prepared items to the threads of one round, each once."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> Any | None:
        with self._lock:
            if self._next >= len(self._items):
                return None
            self._next += 1
            return self._items[self._next - 1]


def _run_round(
    threads: int, seconds: float, supply: _Supply, worker_for: Callable[[], Callable[[Any], bool]]
) -> tuple[int, int, float]:
    """(succeeded, failed, elapsed) for `threads` threads sending until `seconds` have passed."""
    counts = [0, 0]
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def loop() -> None:
        send = worker_for()
        ok = failed = 0
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            item = supply.take()
            if item is None:
                break
            if send(item):
                ok += 1
            else:
                failed += 1
        with lock:
            counts[0] += ok
            counts[1] += failed

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in pool:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    barrier.wait()
    for thread in pool:
        thread.join()
    return counts[0], counts[1], time.perf_counter() - started


def worker(config: dict[str, Any]) -> dict[str, Any]:
    import http.client

    from dagtrigger.runtime import build_dispatcher
    from dagtrigger.settings import Settings

    dispatcher = build_dispatcher(
        Settings.from_env(
            {
                "AIRFLOW_URL": config["url"],
                "AIRFLOW_USERNAME": "admin",
                "AIRFLOW_PASSWORD": config["password"],
                "DAG_ID": DAG_ID,
            }
        )
    )
    template = json.loads((EVENTS / "gcs_legacy_finalize.json").read_text())
    serial = iter(range(time.time_ns() // 1000, 10**20))  # run ids new to this Airflow
    host = config["url"].removeprefix("http://")
    path = f"/api/v2/dags/{DAG_ID}/dagRuns"
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {config['token']}",
    }
    threads, seconds = config["threads"], config["seconds"]
    most = int(seconds * 400) + 100  # more events than a round can send

    def events(count: int) -> list[dict[str, Any]]:
        made = []
        for _ in range(count):
            number = next(serial)
            event = copy.deepcopy(template)
            event["data"]["generation"] = str(number)
            event["context"]["eventId"] = f"bench-{number}"
            made.append(event)
        return made

    def floor_body(event: dict[str, Any]) -> bytes:
        run = dispatcher.plan(event).runs[0]
        subject = run.event.object.uri if run.event.object is not None else run.event.label
        body = {
            "conf": dict(run.conf),
            "dag_run_id": run.dag_run_id,
            "logical_date": None,
            "note": f"Triggered by dagtrigger: {run.event.provider} {run.event.event_type} {subject}",
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def dagtrigger_sender() -> Callable[[Any], bool]:
        return lambda event: dispatcher.handle(event).count("created") == 1

    def floor_sender() -> Callable[[Any], bool]:
        connection = http.client.HTTPConnection(host, timeout=30)

        def send(body: bytes) -> bool:
            connection.request("POST", path, body, headers)
            answer = connection.getresponse()
            answer.read()
            return answer.status in (200, 201)

        return send

    variants = {
        "dagtrigger": (dagtrigger_sender, lambda: events(most)),
        "floor": (floor_sender, lambda: [floor_body(e) for e in events(most)]),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    totals = {name: {"created": 0, "failed": 0} for name in variants}
    for index in range(-1, config["rounds"]):  # round -1 warms up: JWT, API version, pools
        for name in rotated(list(variants), max(index, 0)):
            sender, prepare = variants[name]
            supply = _Supply(prepare())
            length = min(seconds, 2.0) if index < 0 else seconds
            ok, failed, elapsed = _run_round(threads, length, supply, sender)
            totals[name]["created"] += ok
            totals[name]["failed"] += failed
            if index >= 0:
                samples[name].append(ok / elapsed)
    return {
        "threads": threads,
        "seconds": seconds,
        "rounds": config["rounds"],
        "variants": {name: summarise(values).as_dict() for name, values in samples.items()},
        "ratio": paired_ratios(samples["dagtrigger"], samples["floor"]).as_dict(),
        "totals": totals,
    }


if __name__ == "__main__":
    config_path, result_path = sys.argv[1:]
    found = worker(json.loads(Path(config_path).read_text()))
    Path(result_path).write_text(json.dumps(found))
