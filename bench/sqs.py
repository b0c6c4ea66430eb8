"""An SQS batch of 10 through the Lambda handler, against an MWAA stand-in that adds 100 ms to
every InvokeRestApi: its wall time against one request's.

"One request" is one invoke_rest_api call by a bare boto3 client made beforehand. The worker
(`python -m bench.sqs CONFIG RESULT`) alternates the two, each after a 1 s pause, as after a
pause in traffic: dagtrigger runs with its default settings (a batch's records triggered
concurrently, invoke_rest_api paced at 10/s with a bucket of one second's worth, full again after
the pause). The stand-in runs in this process, in threads.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.cold_child import LambdaContext
from bench.common import (
    DAG_ID,
    REPO,
    child_env,
    mwaa_standin,
    paired_ratios,
    rotated,
    run_worker,
    stub_airflow,
    summary,
    worker_main,
)

LATENCY = 0.1
BATCH = 10
SETTLE = 1.0  # dagtrigger's pacing bucket (one second's worth) is full again after this


def measure(work: Path, rounds: int) -> dict[str, Any]:
    stub = stub_airflow()
    mwaa, env = mwaa_standin(stub.url, work, latency=LATENCY)
    try:
        result = run_worker("bench.sqs", {"rounds": rounds}, child_env(**env), work)
    finally:
        mwaa.stop()
        stub.stop()
    print("  sqs batch: done", file=sys.stderr, flush=True)
    return {**result, "latency": LATENCY, "batch": BATCH}


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

    serial = iter(range(1, 10**9))
    client = boto3.client("mwaa", config=Config(retries={"total_max_attempts": 1}))

    def batch() -> None:
        records = [_sqs_record(f"bench-{next(serial)}") for _ in range(BATCH)]
        answer = lambda_function.handler({"Records": records}, LambdaContext())
        if answer != {"batchItemFailures": []}:
            raise RuntimeError(f"batch failed: {answer}")

    def one_request() -> None:
        number = next(serial)
        answer = client.invoke_rest_api(
            Name=os.environ["MWAA_ENVIRONMENT"], Path=f"/dags/{DAG_ID}/dagRuns", Method="POST",
            Body={"conf": {"n": number}, "dag_run_id": f"bench-{number}", "logical_date": None},
        )  # fmt: skip
        if answer["RestApiStatusCode"] != 200:
            raise RuntimeError(f"unexpected answer {answer}")

    variants = {"batch": batch, "one request": one_request}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(-1, config["rounds"]):  # round -1 warms up: dispatcher, client, threads
        for name in rotated(list(variants), max(index, 0)):
            time.sleep(SETTLE)
            started = time.perf_counter()
            variants[name]()
            if index >= 0:
                samples[name].append(time.perf_counter() - started)
    return {
        "variants": {name: summary(values) for name, values in samples.items()},
        "ratio": paired_ratios(samples["batch"], samples["one request"]),
    }


if __name__ == "__main__":
    worker_main(worker)
