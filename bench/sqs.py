"""An SQS batch of 10 through the Lambda handler, against an MWAA stand-in that adds 100 ms to
every InvokeRestApi: its wall time against one request's.

"One request" is one invoke_rest_api call made by a bare boto3 client (the floor); "one event"
is a warm Lambda invocation with one EventBridge event (shown for reference). The worker
(`python -m bench.sqs CONFIG RESULT`) runs once with dagtrigger's default pacing and once with
DAGTRIGGER_RATE_LIMIT=10000 (pacing out of the way), so that concurrency and pacing show apart.
Each call starts after a 0.25 s pause, so no call inherits the pace of the one before it.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.serve import REPO, ServerProcess, child_env
from bench.stats import paired_ratios, rotated, summarise

EVENTS = REPO / "tests" / "events"
DAG_ID = "dagtrigger_example"
LATENCY = 0.1
BATCH = 10
SETTLE = 0.25


def measure(work: Path, rounds: int) -> dict[str, Any]:
    log = work / "sqs.log"
    results: dict[str, Any] = {"latency": LATENCY, "batch": BATCH}
    with (
        ServerProcess("stub", log=log) as stub,
        ServerProcess("mwaa", stub.info["url"], str(LATENCY), log=log) as mwaa,
    ):
        env = child_env(
            **mwaa.info["client_env"],
            AWS_CONFIG_FILE=str(work / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            MWAA_ENVIRONMENT=mwaa.info["environment"],
            DAG_ID=DAG_ID,
            POWERTOOLS_SERVICE_NAME="dagtrigger",
            AWS_LAMBDA_FUNCTION_NAME="dagtrigger",
        )
        for name, extra in (("default", {}), ("unpaced", {"DAGTRIGGER_RATE_LIMIT": "10000"})):
            config_file = work / f"sqs-{name}.json"
            result_file = work / f"sqs-{name}-result.json"
            config_file.write_text(json.dumps({"rounds": rounds}))
            with open(log, "ab") as errors:
                subprocess.run(
                    [sys.executable, "-m", "bench.sqs", str(config_file), str(result_file)],
                    cwd=REPO, env={**env, **extra}, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=errors, check=True, timeout=600,
                )  # fmt: skip
            results[name] = json.loads(result_file.read_text())
            print(f"  sqs batch ({name} pacing): done", file=sys.stderr, flush=True)
    return results


def _sqs_record(message_id: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": json.dumps({"report": "daily", "message": message_id}),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1717222502437"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:dagtrigger",
        "awsRegion": "eu-west-1",
    }


def worker(config: dict[str, Any]) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    sys.path.insert(0, str(REPO / "functions"))
    import lambda_function

    class Context:
        function_name = "dagtrigger"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:dagtrigger"
        aws_request_id = "bench"

        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    context = Context()
    template = json.loads((EVENTS / "eventbridge_custom.json").read_text())
    counter = iter(range(1, 10**9))
    client = boto3.client("mwaa", config=Config(retries={"total_max_attempts": 1}))
    name = os.environ["MWAA_ENVIRONMENT"]

    def batch() -> None:
        records = [_sqs_record(f"bench-{next(counter)}") for _ in range(BATCH)]
        answer = lambda_function.handler({"Records": records}, context)
        if answer != {"batchItemFailures": []}:
            raise RuntimeError(f"batch failed: {answer}")

    def one_event() -> None:
        event = copy.deepcopy(template)
        event["id"] = f"bench-{next(counter)}"
        answer = lambda_function.handler(event, context)
        if answer["runs"][0]["outcome"] != "created":
            raise RuntimeError(f"unexpected answer {answer}")

    def one_request() -> None:
        body = {"conf": {"n": next(counter)}, "dag_run_id": f"bench-{next(counter)}",
                "logical_date": None}  # fmt: skip
        answer = client.invoke_rest_api(
            Name=name, Path=f"/dags/{DAG_ID}/dagRuns", Method="POST", Body=body
        )
        if answer["RestApiStatusCode"] != 200:
            raise RuntimeError(f"unexpected answer {answer}")

    variants = {"batch": batch, "one request": one_request, "one event": one_event}
    for call in variants.values():  # warm-up: the dispatcher, clients, threads, connections
        call()
        time.sleep(SETTLE)
    samples: dict[str, list[float]] = {key: [] for key in variants}
    for index in range(config["rounds"]):
        for key in rotated(list(variants), index):
            time.sleep(SETTLE)
            started = time.perf_counter()
            variants[key]()
            samples[key].append(time.perf_counter() - started)
    from dagtrigger.airflow import mwaa

    return {
        "default_rate": getattr(mwaa, "DEFAULT_RATE_LIMIT", None),  # None: no pacing by default
        "variants": {key: summarise(values).as_dict() for key, values in samples.items()},
        "ratio": paired_ratios(samples["batch"], samples["one request"]).as_dict(),
    }


if __name__ == "__main__":
    config_path, result_path = sys.argv[1:]
    found = worker(json.loads(Path(config_path).read_text()))
    Path(result_path).write_text(json.dumps(found))
