"""HTTP requests per triggered event on the warm path, counted where they arrive.

One worker process per platform (`python -m bench.warm CONFIG RESULT`) starts the stand-ins in
threads of its own, points dagtrigger's environment at them, sends one cold event and then warm
ones through the deployed entry point, and counts what reached the stand-ins:

- Cloud Functions (`cloud_functions.handle_background_event`, Composer 2 configuration): token
  requests at Google's token endpoint plus requests at Composer's front;
- Lambda (`lambda_function.handler`, an EventBridge event): GetEnvironment plus InvokeRestApi at
  the MWAA stand-in.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.cold_child import LambdaContext
from bench.common import (
    EVENTS,
    REPO,
    child_env,
    gcs_events,
    google_standins,
    mwaa_standin,
    run_worker,
    stub_airflow,
    worker_main,
)


def measure(work: Path, events: int) -> dict[str, Any]:
    results = {}
    for platform in ("gcf", "lambda"):
        results[platform] = run_worker(
            "bench.warm", {"platform": platform, "events": events}, child_env(), work
        )
        print(f"  requests per event, {platform}: done", file=sys.stderr, flush=True)
    return results


def _per_event(count: Callable[[], int], events: int, send: Callable[[], None]) -> float:
    before = count()
    for _ in range(events):
        send()
    return (count() - before) / events


def worker(config: dict[str, Any]) -> dict[str, float]:
    events = config["events"]
    with tempfile.TemporaryDirectory() as directory:
        stub = stub_airflow()
        if config["platform"] == "gcf":
            tokens, front, env = google_standins(stub.url, Path(directory))
            servers = [front, tokens, stub]
            os.environ.update(env)
            from dagtrigger.platforms import cloud_functions

            made = gcs_events(1)

            def send() -> None:
                event = next(made)
                cloud_functions.handle_background_event(event["data"], event["context"])

            def count() -> int:
                return int(tokens.access_tokens_issued) + len(front.requests_seen)
        else:
            mwaa, env = mwaa_standin(stub.url, Path(directory))
            servers = [mwaa, stub]
            os.environ.update(env)
            sys.path.insert(0, str(REPO / "functions"))
            import lambda_function

            template = json.loads((EVENTS / "eventbridge_custom.json").read_text())
            serial = iter(range(1, 10**9))

            def send() -> None:
                event = copy.deepcopy(template)
                event["id"] = f"bench-{next(serial)}"
                answer = lambda_function.handler(event, LambdaContext())
                if answer["runs"][0]["outcome"] != "created":
                    raise RuntimeError(f"unexpected answer {answer}")

            def count() -> int:
                return len(mwaa.invocations) + int(mwaa.get_environment_calls)

        try:
            cold = _per_event(count, 1, send)
            warm = _per_event(count, events, send)
            created = len(stub.received("POST"))
            if created != events + 1:
                raise RuntimeError(f"{events + 1} events sent, {created} runs reached Airflow")
        finally:
            for server in servers:
                server.stop()
    return {"cold": cold, "warm": warm, "events": events}


if __name__ == "__main__":
    worker_main(worker)
