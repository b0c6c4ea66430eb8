"""Triggers into a real Airflow 3 (tools/local_airflow, on loopback): throughput, and the time
dagtrigger adds per event once the round trip is realistic.

Two clients send the same kind of events, taking turns round by round:
- dagtrigger: the Cloud Functions entry point (`cloud_functions.handle_background_event`) in the
  worker process, with AIRFLOW_URL, AIRFLOW_USERNAME and AIRFLOW_PASSWORD (a JWT from
  /auth/token, the API version detected; both once, before timing); its log line goes to
  /dev/null;
- raw client: one kept-alive http.client connection, a JWT fetched beforehand, POSTing the body
  dagtrigger sends for the same event (conf, run id, note, `logical_date: null`), planned before
  the clock starts, so that Airflow does the same work for both.

Each client is timed per event, first straight to Airflow (throughput: events / time spent), then
through a `DelayProxy` adding 20 ms and 100 ms to every request. Events are sent one at a time:
this Airflow keeps its metadata in SQLite, which admits one writer at a time, and with triggers
in flight at once it mostly measures SQLite's lock timeout. The worker is `python -m
bench.airflow3 CONFIG RESULT`; Airflow is stopped at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import (
    DAG_ID,
    child_env,
    gcs_events,
    paired_ratios,
    rotated,
    run_worker,
    summary,
    worker_main,
)
from bench.delay_proxy import DelayProxy

DELAYS = (0.0, 0.020, 0.100)


def measure(work: Path, rounds: int, per_round: dict[float, int]) -> dict[str, Any]:
    from tools.local_airflow import LocalAirflow

    started = time.monotonic()
    airflow = LocalAirflow("3", work / "airflow3")
    proxies: list[DelayProxy] = []
    try:
        airflow.start(dag_ids=(DAG_ID,))
        startup = time.monotonic() - started
        print(f"  Airflow {airflow.version} up in {startup:.0f} s", file=sys.stderr, flush=True)
        targets = []
        for delay in DELAYS:
            url = airflow.url
            if delay:
                proxies.append(DelayProxy(airflow.url, delay).start())
                url = proxies[-1].url
            targets.append({"delay": delay, "url": url, "events": per_round[delay]})
        config = {
            "targets": targets,
            "rounds": rounds,
            "password": airflow.admin_password,
            "token": airflow.token(),
        }
        before = _runs_in(airflow)
        result = run_worker("bench.airflow3", config, child_env(), work)
        created = _runs_in(airflow) - before
        if created != result["sent"]:
            raise RuntimeError(f"{result['sent']} events sent, {created} runs created in Airflow")
        return {**result, "airflow_version": airflow.version, "startup": startup}
    finally:
        for proxy in proxies:
            proxy.stop()
        airflow.stop()


def _runs_in(airflow: Any) -> int:
    status, body = airflow.call("GET", f"/dags/{DAG_ID}/dagRuns?limit=1")
    if status != 200:
        raise RuntimeError(f"Airflow answered {status} when asked for its runs: {body}")
    return int(body["total_entries"])


Variant = tuple[Callable[[], Any], Callable[[Any], None]]  # (make one input, send it)


def take_turns(variants: dict[str, Variant], rounds: int, per_round: int) -> dict[str, Any]:
    """Seconds per event of each variant, a list per round; round -1 warms up, untimed."""
    times: dict[str, list[list[float]]] = {name: [] for name in variants}
    for index in range(-1, rounds):
        for name in rotated(list(variants), max(index, 0)):
            make, send = variants[name]
            taken = []
            for _ in range(per_round if index >= 0 else 3):
                item = make()
                started = time.perf_counter()
                send(item)
                taken.append(time.perf_counter() - started)
            if index >= 0:
                times[name].append(taken)
    return times


def worker(config: dict[str, Any]) -> dict[str, Any]:
    import http.client

    from dagtrigger import runtime
    from dagtrigger.platforms import cloud_functions

    os.environ.update(AIRFLOW_USERNAME="admin", AIRFLOW_PASSWORD=config["password"], DAG_ID=DAG_ID)
    made = gcs_events(time.time_ns() // 1000)  # run ids new to this Airflow
    path = f"/api/v2/dags/{DAG_ID}/dagRuns"
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {config['token']}",
    }
    sent = 0

    def event() -> Any:
        nonlocal sent
        sent += 1
        return next(made)

    def entry_point(item: Any) -> None:
        cloud_functions.handle_background_event(item["data"], item["context"])

    def planned_body() -> bytes:
        run = runtime.get_dispatcher().plan(event()).runs[0]
        subject = run.event.object.uri if run.event.object is not None else run.event.label
        note = f"Triggered by dagtrigger: {run.event.provider} {run.event.event_type} {subject}"
        body = {"conf": dict(run.conf), "dag_run_id": run.dag_run_id, "logical_date": None,
                "note": note}  # fmt: skip
        return json.dumps(body, separators=(",", ":")).encode()

    results = []
    for target in config["targets"]:
        os.environ["AIRFLOW_URL"] = target["url"]
        runtime.reset()
        url = urlsplit(target["url"])
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)

        def raw(body: bytes, connection: http.client.HTTPConnection = connection) -> None:
            connection.request("POST", path, body, headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status not in (200, 201):
                raise RuntimeError(f"Airflow answered {answer.status}")

        times = take_turns(
            {"dagtrigger": (event, entry_point), "raw": (planned_body, raw)},
            config["rounds"],
            target["events"],
        )
        connection.close()
        ours, theirs = times["dagtrigger"], times["raw"]
        medians = [
            (statistics.median(a), statistics.median(b)) for a, b in zip(ours, theirs, strict=True)
        ]
        results.append(
            {
                "delay": target["delay"],
                "events": target["events"],
                "per_event": {
                    name: summary([t for taken in rounds for t in taken])
                    for name, rounds in times.items()
                },
                "rate_ratio": paired_ratios(
                    [len(a) / sum(a) for a in ours], [len(b) / sum(b) for b in theirs]
                ),
                "rate": {name: summary([len(t) / sum(t) for t in r]) for name, r in times.items()},
                "extra": summary([a - b for a, b in medians]),
                "extra_share": summary([a / b - 1 for a, b in medians]),
            }
        )
        print(f"  Airflow 3, +{target['delay'] * 1000:.0f} ms: done", file=sys.stderr, flush=True)
    return {"targets": results, "rounds": config["rounds"], "sent": sent}


if __name__ == "__main__":
    worker_main(worker)
