"""What the Lambda runtime hands a handler besides the event, and a client that makes an SQS
batch's records meet inside their triggers."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagtrigger.airflow.client import Outcome, TriggerResult
from dagtrigger.airflow.retry import RetryPolicy


@dataclass
class LambdaContext:
    """The context object's fields that dagtrigger and Powertools read."""

    aws_request_id: str = "req-1"
    function_name: str = "dagtrigger"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:dagtrigger"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class BatchBarrierClient:
    """Creates every run, holding each trigger until all of the batch's threads are inside, so
    the records of one batch are proven to run at the same time."""

    def __init__(self, parties: int, hold: float = 0.0) -> None:
        self.retry = RetryPolicy(deadline=5.0)
        self._barrier = threading.Barrier(parties, timeout=5)
        self._hold = hold  # then each stays a moment longer, interleaving what they log

    def trigger(
        self, dag_id: str, dag_run_id: str | None, conf: Mapping[str, Any], **_: Any
    ) -> TriggerResult:
        self._barrier.wait()
        time.sleep(self._hold)
        return TriggerResult(Outcome.CREATED, dag_id, str(dag_run_id), {}, 1)


def sqs_record(message_id: str, body: str, **attributes: str) -> dict[str, Any]:
    """One record of an SQS event as Lambda's event source mapping delivers it; `attributes`
    become String message attributes."""
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1717222502437"},
        "messageAttributes": {
            k: {"stringValue": v, "dataType": "String"} for k, v in attributes.items()
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:dagtrigger",
        "awsRegion": "eu-west-1",
    }
