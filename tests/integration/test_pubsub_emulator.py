"""The Pub/Sub path end to end on Google's own Pub/Sub emulator: a topic, a push subscription to
functions-framework serving functions/main.py (as infra/gcp and cloudbuild.yaml set it up, the
topic in the push URL's path), messages published with the official client, runs in a real
Airflow. What is asserted is what the emulator does with the function's answers: a 2xx
acknowledges, anything else is delivered again.

One Airflow (3) is enough here: the Pub/Sub envelope and its deliveries do not depend on the
Airflow version, which the other integration tests cover.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.functions_server import FunctionsServer
from tests.integration.helpers import airflow_env, count_runs, read_run
from tests.integration.pubsub_emulator import PROJECT, PubSubEmulator, PushRelay, emulator_missing
from tests.standins._http import LoopbackServer, Request, Response, forward, json_response
from tools.local_airflow import LocalAirflow

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.skipif(emulator_missing() is not None, reason=str(emulator_missing())),
]

DAG = "dagtrigger_sales"
TOPIC = "dagtrigger-requests"


class FailingFront(LoopbackServer):
    """Forwards to Airflow; while `failing`, a request that creates a run is forwarded (so the run
    exists) and then answered 503, as when the answer is lost on the way back."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__()
        self.upstream_url = upstream_url
        self.failing = False

    def handle(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k in ("authorization", "cookie")}
        answer = forward(self.upstream_url, request, headers)
        if self.failing and request.method == "POST" and request.path.endswith("/dagRuns"):
            return json_response(503, {"detail": "Service Unavailable"}, {"Retry-After": "0"})
        return answer


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSubEmulator]:
    with PubSubEmulator(tmp_path_factory.mktemp("pubsub-emulator")) as running:
        yield running


@pytest.fixture
def pubsub(emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    from google.cloud import pubsub_v1

    return pubsub_v1


@pytest.fixture
def front(airflow: LocalAirflow) -> Iterator[FailingFront]:
    with FailingFront(airflow.url) as running:
        yield running


@pytest.fixture
def relay(airflow: LocalAirflow, front: FailingFront, tmp_path: Path) -> Iterator[PushRelay]:
    env = airflow_env(
        airflow,
        AIRFLOW_URL=front.url,
        AIRFLOW_API_VERSION="v2" if airflow.major == "3" else "v1",
        DAG_ID=DAG,
        DAGTRIGGER_DEADLINE="3",
    )
    function = FunctionsServer("handle_cloud_event", env, tmp_path / "function.log")
    with function, PushRelay(function) as running:
        yield running


@pytest.fixture
def topic(pubsub: Any, relay: PushRelay, request: pytest.FixtureRequest) -> Iterator[str]:
    """A topic of this test's own with a push subscription to the function, as deployed."""
    name = f"{TOPIC}-{request.node.name.split('[')[0][-30:].replace('_', '-')}-{time.time_ns()}"
    publisher, subscriber = pubsub.PublisherClient(), pubsub.SubscriberClient()
    topic_path = publisher.topic_path(PROJECT, name)
    subscription_path = subscriber.subscription_path(PROJECT, f"{name}-push")
    publisher.create_topic(name=topic_path)
    subscriber.create_subscription(
        request={
            "name": subscription_path,
            "topic": topic_path,
            "push_config": {"push_endpoint": f"{relay.url.rstrip('/')}/{topic_path}"},
            "ack_deadline_seconds": 30,
            "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 2}},
        }
    )
    yield topic_path
    subscriber.delete_subscription(subscription=subscription_path)
    publisher.delete_topic(topic=topic_path)


def _publish(pubsub: Any, topic: str, data: bytes, **attributes: str) -> str:
    return str(pubsub.PublisherClient().publish(topic, data, **attributes).result(timeout=30))


def _function_lines(relay: PushRelay, message_id: str) -> list[dict[str, Any]]:
    return [e for e in relay.function.log_entries() if e.get("event_id") == message_id]


def _one_run(airflow: LocalAirflow, relay: PushRelay, message_id: str) -> dict[str, Any]:
    run_ids = {e["dag_run_id"] for e in _function_lines(relay, message_id) if "dag_run_id" in e}
    assert len(run_ids) == 1, _function_lines(relay, message_id)
    run = read_run(airflow, DAG, run_ids.pop())
    assert run is not None
    return dict(run)


@pytest.mark.parametrize("airflow", ["3"], indirect=True)
def test_a_plain_message_starts_one_run_with_its_data_and_attributes(
    airflow: LocalAirflow, pubsub: Any, topic: str, relay: PushRelay
) -> None:
    before = count_runs(airflow, DAG)
    payload = {"table": "orders", "partition": "2024-06-01"}
    message_id = _publish(pubsub, topic, json.dumps(payload).encode(), origin="billing-exporter")

    assert relay.wait_for(message_id, 200) == [200]
    run = _one_run(airflow, relay, message_id)
    assert run["conf"]["provider"] == "pubsub"
    assert run["conf"]["message_id"] == message_id
    assert run["conf"]["data"] == payload
    assert run["conf"]["attributes"] == {"origin": "billing-exporter"}
    assert count_runs(airflow, DAG) == before + 1


@pytest.mark.parametrize("airflow", ["3"], indirect=True)
def test_a_cloud_storage_notification_starts_one_run_for_the_object(
    airflow: LocalAirflow, pubsub: Any, topic: str, relay: PushRelay
) -> None:
    # What a Cloud Storage notification configuration (payload format JSON_API_V1) publishes:
    # the object's resource as JSON data, and the event in the attributes.
    generation = str(time.time_ns() // 1000)
    name = f"sales/{generation}/orders.csv"
    resource = {
        "kind": "storage#object",
        "bucket": "acme-landing",
        "name": name,
        "generation": generation,
        "size": "48213",
        "contentType": "text/csv",
        "metadata": {"source-system": "pos"},
    }
    message_id = _publish(
        pubsub,
        topic,
        json.dumps(resource).encode(),
        bucketId="acme-landing",
        objectId=name,
        objectGeneration=generation,
        eventType="OBJECT_FINALIZE",
        eventTime="2024-06-01T06:15:02.437019Z",
        payloadFormat="JSON_API_V1",
        notificationConfig="projects/_/buckets/acme-landing/notificationConfigs/7",
    )

    assert relay.wait_for(message_id, 200) == [200]
    conf = _one_run(airflow, relay, message_id)["conf"]
    assert conf["provider"] == "gcs"
    assert conf["uri"] == f"gs://acme-landing/{name}"
    assert conf["size"] == 48213
    assert conf["metadata"] == {"source-system": "pos"}


@pytest.mark.parametrize("airflow", ["3"], indirect=True)
def test_a_transient_failure_is_redelivered_by_pubsub_and_still_gives_one_run(
    airflow: LocalAirflow, pubsub: Any, topic: str, relay: PushRelay, front: FailingFront
) -> None:
    before = count_runs(airflow, DAG)
    front.failing = True  # Airflow creates the run, but the answer never comes back
    message_id = _publish(pubsub, topic, b'{"table": "refunds"}')

    relay.wait_for(message_id, 500)
    front.failing = False
    statuses = relay.wait_for(message_id, 200)

    assert statuses[-1] == 200 and 500 in statuses, statuses
    outcomes = [e.get("outcome") for e in _function_lines(relay, message_id)]
    assert "failed" in outcomes and outcomes[-1] == "duplicate", outcomes
    assert _one_run(airflow, relay, message_id)["conf"]["data"] == {"table": "refunds"}
    assert count_runs(airflow, DAG) == before + 1


@pytest.mark.parametrize("airflow", ["3"], indirect=True)
def test_an_unusable_message_is_acknowledged_not_redelivered(
    airflow: LocalAirflow, pubsub: Any, topic: str, relay: PushRelay
) -> None:
    before = count_runs(airflow, DAG)
    message_id = _publish(
        pubsub,
        topic,
        base64.b64encode(b"not the object resource"),
        bucketId="acme-landing",
        objectId="a.csv",
        objectGeneration="1",
        eventType="OBJECT_EXPLODE",
        payloadFormat="JSON_API_V1",
    )

    relay.wait_for(message_id, 200)
    time.sleep(4)  # twice the subscription's longest backoff: any redelivery would be here
    assert relay.statuses(message_id) == [200]
    assert [e.get("outcome") for e in _function_lines(relay, message_id)] == ["rejected"]
    assert count_runs(airflow, DAG) == before
