"""A configuration problem found while sending keeps the event, on every entry point.

Settings can be valid and still unusable: no Google credentials when the first token is
fetched, AIRFLOW_AUTH=iap in front of an Airflow that is not behind IAP, an AIRFLOW_URL that
redirects, a proxy that wants credentials. Each is found at the first request, and each would
fail every event the same way until the deployment is fixed, so the platform must keep the event:
Cloud Functions answers 500 (redelivered), an SQS record is reported in batchItemFailures, a
direct Lambda invocation raises (Lambda's retries, then the on-failure destination). A batch
whose every record failed makes Powertools raise, which returns the whole batch. Each case
also ends with the fix in the function's output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from dagtrigger import runtime
from dagtrigger.errors import ConfigurationError
from tests.integration.functions_server import FunctionsServer
from tests.integration.helpers import count_runs
from tests.standins.aws_lambda import LambdaContext
from tests.standins.hostile_http import ForwardProxy, HostileServer, answer
from tools.local_airflow import REPO, LocalAirflow, free_port

pytestmark = pytest.mark.airflow

DAG = "dagtrigger_example"
API_VERSION = {"2": "v1", "3": "v2"}
EVENTS = REPO / "tests" / "events"


@dataclass(frozen=True)
class Case:
    name: str
    fix: str  # a fragment of the fix the function prints

    def env(self, airflow: LocalAirflow, stack: list[Any]) -> dict[str, str]:
        """The deployment's settings; servers the case needs are started into `stack`."""
        base = {
            "DAG_ID": DAG,
            "DAGTRIGGER_DEADLINE": "5",
            "AIRFLOW_API_VERSION": API_VERSION[airflow.major],
        }
        if self.name == "iap-without-iap":
            return {**base, "AIRFLOW_URL": airflow.url, "AIRFLOW_AUTH": "iap"}
        if self.name == "no-google-credentials":
            nowhere = f"127.0.0.1:{free_port()}"  # google-auth asks the metadata server here
            return {**base, "AIRFLOW_URL": airflow.url, "AIRFLOW_AUTH": "google",
                    "GCE_METADATA_HOST": nowhere, "GCE_METADATA_IP": nowhere}  # fmt: skip
        if self.name == "redirecting-url":
            front = HostileServer([answer(308, headers=[("Location", "https://airflow.example/")])])
            stack.append(front.start())
            return {**base, "AIRFLOW_URL": front.url, "AIRFLOW_TOKEN": "t0ken"}
        assert self.name == "proxy-wants-credentials"
        proxy = ForwardProxy(("svc", "proxy-password"))
        stack.append(proxy.start())
        return {
            **base,
            "AIRFLOW_URL": airflow.url,
            "AIRFLOW_TOKEN": "t0ken",
            "HTTP_PROXY": proxy.url,
        }


CASES = [
    Case("iap-without-iap", "set IAP_CLIENT_ID if it is, or choose another AIRFLOW_AUTH"),
    Case("no-google-credentials", "GOOGLE_APPLICATION_CREDENTIALS"),
    Case("redirecting-url", "a redirect to https://airflow.example/"),
    Case("proxy-wants-credentials", "asks for credentials (407): put its user name and password"),
]


@pytest.fixture
def started() -> Iterator[list[Any]]:
    servers: list[Any] = []
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cloud_functions_answer_500_so_the_event_comes_back(
    case: Case, airflow: LocalAirflow, started: list[Any], tmp_path: Path
) -> None:
    before = count_runs(airflow, DAG)
    event = json.loads((EVENTS / "gcs_cloudevent_finalized.json").read_text())
    log = tmp_path / "function.log"
    with FunctionsServer("handle_cloud_event", case.env(airflow, started), log) as function:
        statuses = [function.post_structured(event) for _ in range(2)]
        output = log.read_text()

    assert statuses == [500, 500]
    assert case.fix in output
    assert count_runs(airflow, DAG) == before


@pytest.fixture
def lambda_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Any, Any], Any]]:
    monkeypatch.syspath_prepend(str(REPO / "functions"))
    import lambda_function

    runtime.reset()
    yield lambda_function.handler
    runtime.reset()


def _use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("AIRFLOW_USERNAME", "AIRFLOW_PASSWORD", "AIRFLOW_TOKEN", "AIRFLOW_AUTH",
                 "DAGTRIGGER_ROUTES", "MWAA_ENVIRONMENT", "AIRFLOW_SECRET_ARN", "IAP_CLIENT_ID"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


LAMBDA_CASES = [c for c in CASES if c.name != "no-google-credentials"]  # no Google on Lambda


@pytest.mark.parametrize("case", LAMBDA_CASES, ids=lambda c: c.name)
def test_sqs_reports_the_record_and_a_direct_invocation_raises(
    case: Case,
    airflow: LocalAirflow,
    started: list[Any],
    lambda_handler: Callable[[Any, Any], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use(monkeypatch, case.env(airflow, started))
    before = count_runs(airflow, DAG)
    s3_event = json.loads((EVENTS / "s3_put.json").read_text())
    batch = {"Records": [{
        "messageId": "m-1", "receiptHandle": "h-1", "body": json.dumps(s3_event),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1717236000123"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:111122223333:dagtrigger-events",
        "awsRegion": "eu-west-1",
    }]}  # fmt: skip

    with pytest.raises(BatchProcessingError) as batch_failed:
        lambda_handler(batch, LambdaContext())
    with pytest.raises(ConfigurationError) as raised:
        lambda_handler(s3_event, LambdaContext())

    assert case.fix in str(batch_failed.value)
    assert case.fix in str(raised.value)
    assert count_runs(airflow, DAG) == before
