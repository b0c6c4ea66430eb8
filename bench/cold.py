"""Cold start: a fresh process per run, from its start to the first event's answer.

Each run is `bench/cold_child.py VARIANT`: the clock starts before the process is spawned and
stops when the child reports the event handled; the peak resident set size and the CPU time
(user + system) are that child's own (`os.wait4`: ru_maxrss, ru_utime + ru_stime). Variants of a pair alternate run by run (A B B A ...), after warm-up
runs that also fill the page cache and write the bytecode caches.

The three pairs and what each side includes:

- Cloud Functions, bare: dagtrigger's `cloud_functions.handle_background_event` (what main.py
  calls) vs Google's Composer 2 sample's function; neither imports functions-framework.
- Cloud Functions, under functions-framework: both loaded by `functions_framework.create_app`
  from their source file, the first event POSTed to the app, as the Python runtime serves them.
- Lambda: functions/lambda_function.py vs a handler that imports boto3 and the Powertools modules
  dagtrigger uses and calls invoke_rest_api once; neither includes Lambda's own runtime client.

Both Cloud Functions sides use ADC from a service-account key file whose token_uri is the local
token endpoint, and POST through the Composer front stand-in (which checks the token) to the
stub: one token request and one POST each. dagtrigger is configured with AIRFLOW_URL,
AIRFLOW_AUTH=google and AIRFLOW_API_VERSION=v1, which is what the sample hard-codes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.serve import REPO, ServerProcess, child_env
from bench.stats import paired_ratios, rotated, summarise

CHILD = REPO / "bench" / "cold_child.py"
EVENTS = REPO / "tests" / "events"

PAIRS = {
    "gcf": ("gcf-dagtrigger", "gcf-sample"),
    "gcf-ff": ("gcf-ff-dagtrigger", "gcf-ff-sample"),
    "lambda": ("lambda-dagtrigger", "lambda-baseline"),
}


@dataclass(frozen=True)
class ColdRun:
    seconds: float
    max_rss_kib: int
    cpu_seconds: float  # user + system time of the child: far less sensitive to a busy machine


def run_child(variant: str, event_file: Path, env: dict[str, str], log: Path) -> ColdRun:
    read_end, write_end = os.pipe()
    try:
        with open(log, "ab") as errors:
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, str(CHILD), variant, str(event_file), str(write_end)],
                pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=errors, env=env, cwd=REPO / "bench",
            )  # fmt: skip
        os.close(write_end)
        write_end = -1
        answered = os.read(read_end, 64)
        elapsed = time.perf_counter() - started
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    if not answered or process.returncode != 0:
        raise RuntimeError(f"cold start {variant} failed (exit {process.returncode}); see {log}")
    return ColdRun(elapsed, int(usage.ru_maxrss), usage.ru_utime + usage.ru_stime)


def measure(work: Path, runs: int, warmup: int) -> dict[str, object]:
    """Every pair, `runs` measured runs per variant after `warmup` discarded ones."""
    log = work / "cold.log"
    gcs_event = EVENTS / "gcs_legacy_finalize.json"
    bridge_event = EVENTS / "eventbridge_custom.json"
    results: dict[str, object] = {}
    with (
        ServerProcess("stub", log=log) as stub,
        ServerProcess("google", stub.info["url"], str(work / "key.json"), log=log) as google,
        ServerProcess("mwaa", stub.info["url"], "0", log=log) as mwaa,
    ):
        sdk_config = work / "gcloud"
        sdk_config.mkdir(exist_ok=True)
        gcf_env = child_env(
            GOOGLE_APPLICATION_CREDENTIALS=str(work / "key.json"),
            CLOUDSDK_CONFIG=str(sdk_config),
            NO_GCE_CHECK="True",
            AIRFLOW_URL=google.info["front_url"],
            AIRFLOW_AUTH="google",
            AIRFLOW_API_VERSION="v1",
            DAG_ID="dagtrigger_example",
        )
        lambda_env = child_env(
            **mwaa.info["client_env"],
            AWS_CONFIG_FILE=str(work / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            MWAA_ENVIRONMENT=mwaa.info["environment"],
            DAG_ID="dagtrigger_example",
            POWERTOOLS_SERVICE_NAME="dagtrigger",
            AWS_LAMBDA_FUNCTION_NAME="dagtrigger",
        )
        for env in (gcf_env, lambda_env):
            env.pop("PYTHONPATH")  # each child puts exactly its own code on sys.path
        setups = {
            "gcf": (gcs_event, gcf_env),
            "gcf-ff": (gcs_event, gcf_env),
            "lambda": (bridge_event, lambda_env),
        }
        posts_before = stub.stats().get("POST", 0)
        children = 0
        for pair, (a, b) in PAIRS.items():
            event_file, env = setups[pair]
            samples: dict[str, list[ColdRun]] = {a: [], b: []}
            for index in range(warmup + runs):
                for variant in rotated((a, b), index):
                    run = run_child(variant, event_file, env, log)
                    children += 1
                    if index >= warmup:
                        samples[variant].append(run)
            results[pair] = _pair_result(samples[a], samples[b])
            print(f"  cold start {pair}: done", file=sys.stderr, flush=True)
        posts = stub.stats().get("POST", 0) - posts_before
        if posts != children:
            raise RuntimeError(
                f"{children} cold starts but {posts} POSTs reached the stub; see {log}"
            )
    return results


def _pair_result(ours: list[ColdRun], theirs: list[ColdRun]) -> dict[str, object]:
    result = {}
    for name, value in (
        ("time", lambda r: r.seconds),
        ("cpu", lambda r: r.cpu_seconds),
        ("rss", lambda r: r.max_rss_kib / 1024),
    ):
        mine, baseline = [value(r) for r in ours], [value(r) for r in theirs]
        result[name] = {
            "dagtrigger": summarise(mine).as_dict(),
            "baseline": summarise(baseline).as_dict(),
            "ratio": paired_ratios(mine, baseline).as_dict(),
        }
    return result
