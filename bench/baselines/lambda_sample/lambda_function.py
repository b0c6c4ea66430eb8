"""The baseline Lambda: what a function calling MWAA's InvokeRestApi imports and does, no more.

It imports boto3 and the Powertools modules dagtrigger's Lambda entry point uses (Logger, the
batch utilities, the SQS record class, the shared helpers), then starts one DAG run with a single
`invoke_rest_api` call, as AWS's MWAA documentation shows it: no environment lookup, no
routing, no run id, no retries.
"""

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger  # noqa: F401
from aws_lambda_powertools.shared.functions import strtobool  # noqa: F401
from aws_lambda_powertools.utilities.batch import (  # noqa: F401
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord  # noqa: F401


def handler(event: Any, context: Any) -> Any:
    client = boto3.client("mwaa")
    answer = client.invoke_rest_api(
        Name=os.environ["MWAA_ENVIRONMENT"],
        Path=f"/dags/{os.environ['DAG_ID']}/dagRuns",
        Method="POST",
        Body={"conf": event, "logical_date": None},
    )
    return answer["RestApiStatusCode"]
