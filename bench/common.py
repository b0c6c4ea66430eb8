"""What the measurements share: paths, a clean environment for their processes, the stand-ins,
the order in which variants take turns, and the summaries.

The summaries are the standard library's `statistics` (median, quartiles, 95th percentile), not
pyperf. pyperf times a Python callable, calibrating its loops in worker processes of its own and
running one benchmark after the other. What is timed here is either a whole process (spawn to
the first event's answer, with its peak RSS) or real HTTP exchanges of milliseconds, and the
variants of a comparison take turns (A B B A ...) so that each round gives a pair measured under
the same load. On a busy machine the pair's ratio holds where neither time does, and its median
and quartiles are all there is to compute.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "tests" / "events"
DAG_ID = "dagtrigger_example"
MWAA_NAME = "dagtrigger-bench"
# What Airflow answers to a created run, trimmed.
CREATED = {"dag_run_id": "bench", "dag_id": DAG_ID, "state": "queued", "conf": {}}

Summary = dict[str, float]


def summary(values: Sequence[float]) -> Summary:
    """Median, quartiles and 95th percentile of `values`."""
    if len(values) < 2:
        only = values[0] if values else float("nan")
        return {"median": only, "q1": only, "q3": only, "p95": only, "n": len(values)}
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    p95 = statistics.quantiles(values, n=20, method="inclusive")[18]
    return {"median": median, "q1": q1, "q3": q3, "p95": p95, "n": len(values)}


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Summary:
    """The summary of numerator[i] / denominator[i], one per round."""
    return summary([a / b for a, b in zip(numerators, denominators, strict=True)])


def rotated(variants: Sequence[str], round_index: int) -> list[str]:
    """The variants in a different order each round (A B, B A, ...), so none always goes first."""
    shift = (round_index // 2) % len(variants)
    order = [*variants[shift:], *variants[:shift]]
    return order if round_index % 2 == 0 else order[::-1]


def child_env(**extra: str) -> dict[str, str]:
    """A clean environment for the benchmark's own processes: no cloud settings leak in."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DAGTRIGGER_CACHE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONPATH"] = os.pathsep.join((str(REPO), str(REPO / "functions")))
    env.update(extra)
    return env


def run_worker(module: str, config: dict[str, Any], env: dict[str, str], work: Path) -> Any:
    """`python -m MODULE CONFIG RESULT` in `env`; its result. Its stderr goes to work/NAME.log."""
    name = module.rsplit(".", 1)[-1]
    config_file, result_file = work / f"{name}-config.json", work / f"{name}-result.json"
    config_file.write_text(json.dumps(config))
    with open(work / f"{name}.log", "ab") as errors:
        subprocess.run(
            [sys.executable, "-m", module, str(config_file), str(result_file)],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=errors, check=True, timeout=1200,
        )  # fmt: skip
    return json.loads(result_file.read_text())


def worker_main(worker: Callable[[dict[str, Any]], Any]) -> None:
    """A worker's `__main__`: config from argv[1], result as JSON to argv[2]."""
    config_path, result_path = sys.argv[1:]
    result = worker(json.loads(Path(config_path).read_text()))
    Path(result_path).write_text(json.dumps(result))


def gcs_events(first: int) -> Iterator[dict[str, Any]]:
    """Distinct GCS legacy background events (a new generation each, so a new run id)."""
    template = json.loads((EVENTS / "gcs_legacy_finalize.json").read_text())
    for number in itertools.count(first):
        event = copy.deepcopy(template)
        event["data"]["generation"] = str(number)
        event["context"]["eventId"] = f"bench-{number}"
        yield event


# ---- stand-ins (tests/standins), started in the process that asks for them ----


def stub_airflow() -> Any:
    """An Airflow that creates every run it is asked for (v1 and v2) and answers the version
    probe of v2, as fast as a threaded stand-in can."""
    from tests.unit.stub_airflow import Reply, StubAirflow

    stub = StubAirflow()
    for version in ("v1", "v2"):
        stub.always("POST", f"/api/{version}/dags/{DAG_ID}/dagRuns", Reply(200, CREATED))
    stub.always("GET", "/api/v2/version", Reply(200, {"version": "3.0.6"}))
    return stub.start()


def google_standins(upstream: str, work: Path) -> tuple[Any, Any, dict[str, str]]:
    """Google's token endpoint and Composer's front before `upstream`, started, and the
    environment a Cloud Function on Composer 2 has with them (ADC from a key file)."""
    from tests.standins.google import ComposerFront, GoogleTokenServer

    tokens = GoogleTokenServer().start()
    front = ComposerFront(upstream, tokens, dict).start()
    key_file, sdk_config = work / "key.json", work / "gcloud"
    key_file.write_text(json.dumps(tokens.service_account_key()))
    sdk_config.mkdir(exist_ok=True)
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "CLOUDSDK_CONFIG": str(sdk_config),
        "NO_GCE_CHECK": "True",
        "AIRFLOW_URL": front.url,
        "AIRFLOW_AUTH": "google",
        "AIRFLOW_API_VERSION": "v1",  # what Google's sample hard-codes
        "DAG_ID": DAG_ID,
    }
    return tokens, front, env


def mwaa_standin(upstream: str, work: Path, latency: float = 0.0) -> tuple[Any, dict[str, str]]:
    """The MWAA stand-in (SigV4, InvokeRestApi, GetEnvironment) before `upstream`, started, and
    the environment of a Lambda function using it."""
    from tests.standins.mwaa import MwaaEnvironment, MwaaStandin

    environment = MwaaEnvironment(MWAA_NAME, upstream, "3.0.6", dict)
    mwaa = MwaaStandin({MWAA_NAME: environment}, extra_latency=latency).start()
    env = {
        **mwaa.client_env(),
        "AWS_CONFIG_FILE": str(work / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "MWAA_ENVIRONMENT": MWAA_NAME,
        "DAG_ID": DAG_ID,
        "POWERTOOLS_SERVICE_NAME": "dagtrigger",
        "AWS_LAMBDA_FUNCTION_NAME": "dagtrigger",
    }
    return mwaa, env
