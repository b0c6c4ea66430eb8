"""Cold start: a fresh process per run, from its start to the first event's answer.

Each run is `bench/cold_child.py VARIANT`: the clock starts before the process is spawned and
stops when the child reports the event handled, with its peak resident set size (VmHWM); its
CPU time (user + system) is from `os.wait4`. The two variants of a pair alternate run by run
(A B B A ...), after warm-up runs that also fill the page cache and the bytecode caches.

The pairs, and what each side includes:

- Cloud Functions, bare: dagtrigger's `cloud_functions.handle_background_event` (what main.py
  calls) against Google's Composer 2 sample's function; neither imports functions-framework.
- Cloud Functions, under functions-framework: both loaded by `functions_framework.create_app`
  from their source file and the first event POSTed to the app, as the Python runtime does.
- Lambda: functions/lambda_function.py against a handler that imports boto3 and the Powertools
  modules dagtrigger uses and calls invoke_rest_api once; neither includes Lambda's runtime client.
- Self-hosted: the bare Cloud Functions handler with only AIRFLOW_URL and AIRFLOW_TOKEN (no cloud
  SDK; the API version is detected, so two requests) against one POST with http.client.

Both Google sides get a token from the token stand-in (ADC from a key file) and POST through the
Composer front stand-in. Every stand-in runs in this process, in threads, while the child runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    DAG_ID,
    EVENTS,
    REPO,
    child_env,
    google_standins,
    mwaa_standin,
    paired_ratios,
    rotated,
    stub_airflow,
    summary,
)

CHILD = REPO / "bench" / "cold_child.py"
# key: (dagtrigger's variant, the baseline's variant)
PAIRS = {
    "gcf": ("gcf-dagtrigger", "gcf-sample"),
    "gcf-ff": ("gcf-ff-dagtrigger", "gcf-ff-sample"),
    "lambda": ("lambda-dagtrigger", "lambda-baseline"),
    "self-hosted": ("self-hosted-dagtrigger", "self-hosted-stdlib"),
}


def run_child(variant: str, event_file: Path, env: dict[str, str], log: Path) -> dict[str, float]:
    """One cold start: seconds to the answer, CPU seconds and peak RSS (MiB) of the child."""
    read_end, write_end = os.pipe()
    try:
        with open(log, "ab") as errors:
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, str(CHILD), variant, str(event_file), str(write_end)],
                pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=errors, env=env, cwd=REPO,
            )  # fmt: skip
        os.close(write_end)
        write_end = -1
        answered = os.read(read_end, 64)
        elapsed = time.perf_counter() - started
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    if not answered.startswith(b"answered ") or os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"cold start {variant} failed; see {log}")
    return {
        "time": elapsed,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": int(answered.split()[1]) / 1024,
    }


def measure(work: Path, runs: int, warmup: int) -> dict[str, Any]:
    """Every pair: `runs` measured runs per variant after `warmup` discarded ones."""
    log = work / "cold.log"
    gcs_event = EVENTS / "gcs_legacy_finalize.json"
    stub = stub_airflow()
    tokens, front, google_env = google_standins(stub.url, work)
    mwaa, lambda_env = mwaa_standin(stub.url, work)
    try:
        self_hosted_env = {"AIRFLOW_URL": stub.url, "AIRFLOW_TOKEN": "t0ken", "DAG_ID": DAG_ID}
        setups = {
            "gcf": (gcs_event, google_env),
            "gcf-ff": (gcs_event, google_env),
            "lambda": (EVENTS / "eventbridge_custom.json", lambda_env),
            "self-hosted": (gcs_event, self_hosted_env),
        }
        results: dict[str, Any] = {}
        posts_before = len(stub.received("POST"))
        children = 0
        for pair, (ours, theirs) in PAIRS.items():
            event_file, extra = setups[pair]
            env = child_env(**extra)
            env.pop("PYTHONPATH")  # each child puts exactly its own code on sys.path
            samples: dict[str, list[dict[str, float]]] = {ours: [], theirs: []}
            for index in range(warmup + runs):
                for variant in rotated((ours, theirs), index):
                    run = run_child(variant, event_file, env, log)
                    children += 1
                    if index >= warmup:
                        samples[variant].append(run)
            results[pair] = {
                name: {
                    "dagtrigger": summary([r[name] for r in samples[ours]]),
                    "baseline": summary([r[name] for r in samples[theirs]]),
                    "ratio": paired_ratios(
                        [r[name] for r in samples[ours]], [r[name] for r in samples[theirs]]
                    ),
                }
                for name in ("time", "cpu", "rss")
            }
            print(f"  cold start {pair}: done", file=sys.stderr, flush=True)
        posts = len(stub.received("POST")) - posts_before
        if posts != children:
            raise RuntimeError(
                f"{children} cold starts but {posts} runs reached Airflow; see {log}"
            )
        return results
    finally:
        for server in (mwaa, front, tokens, stub):
            server.stop()
