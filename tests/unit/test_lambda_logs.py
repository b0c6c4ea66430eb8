"""The Lambda's log lines name the record they are about, even when an SQS batch runs in threads."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagtrigger.dispatch import Dispatcher
from dagtrigger.platforms import aws_lambda
from dagtrigger.routing import Router
from tests.standins.aws_lambda import BatchBarrierClient, LambdaContext

EVENTS = Path(__file__).resolve().parent.parent / "events"


@pytest.fixture
def stdout(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = aws_lambda.logger.registered_handler
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]


def test_each_record_of_a_concurrent_batch_logs_its_own_correlation_id(
    monkeypatch: pytest.MonkeyPatch, stdout: io.StringIO
) -> None:
    template = json.loads((EVENTS / "sqs_plain_text.json").read_text())["Records"][0]
    records = []
    for index in range(8):
        record = copy.deepcopy(template)
        record["messageId"] = f"message-{index}"
        records.append(record)
    client = BatchBarrierClient(len(records), hold=0.01)
    dispatcher = Dispatcher(lambda: Router.single("d"), lambda: client)  # type: ignore[arg-type, return-value]
    monkeypatch.setattr(aws_lambda, "get_dispatcher", lambda: dispatcher)

    answer = aws_lambda.handle({"Records": records}, LambdaContext())

    assert answer == {"batchItemFailures": []}
    lines = [json.loads(line) for line in stdout.getvalue().splitlines() if '"outcome"' in line]
    assert sorted(line["event_id"] for line in lines) == [f"message-{i}" for i in range(8)]
    assert [line["correlation_id"] for line in lines] == [line["event_id"] for line in lines]


def test_a_direct_invocation_logs_the_event_id_as_its_correlation_id(
    monkeypatch: pytest.MonkeyPatch, stdout: io.StringIO
) -> None:
    event = json.loads((EVENTS / "eventbridge_custom.json").read_text())
    client = BatchBarrierClient(1)
    dispatcher = Dispatcher(lambda: Router.single("d"), lambda: client)  # type: ignore[arg-type, return-value]
    monkeypatch.setattr(aws_lambda, "get_dispatcher", lambda: dispatcher)

    aws_lambda.handle(event, LambdaContext())

    (line,) = [json.loads(text) for text in stdout.getvalue().splitlines() if '"outcome"' in text]
    assert line["correlation_id"] == line["event_id"] == event["id"]
