"""Recording asset events over real HTTP, against a scripted Airflow on loopback: which asset is
meant among what the LIKE filters return, what each version is sent, and how a redelivery or a
lost answer is recognised (tests/integration/test_asset_events.py does it on real Airflow)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dagtrigger.airflow.client import Outcome
from dagtrigger.assets import IDENTITY_KEY, PlannedAssetEvent
from dagtrigger.errors import ConfigurationError, PermanentTriggerError
from tests.fake_time import FakeTime
from tests.unit.stub_airflow import RESET, Reply, StubAirflow
from tests.unit.test_client import client_for
from tests.unit.test_routing import gcs_event

KEY = "gcs__finalized__raw_sales_2024-05-01_day.csv__0123456789abcdef0123"
HOURLY = "gs://acme-landing/sales_hourly"
V2_ASSETS, V2_EVENTS = "/api/v2/assets", "/api/v2/assets/events"
V1_DATASETS, V1_EVENTS = "/api/v1/datasets", "/api/v1/datasets/events"


@pytest.fixture
def stub() -> Iterator[StubAirflow]:
    with StubAirflow() as server:
        yield server


def planned(asset: str = HOURLY, partition_key: str | None = None) -> PlannedAssetEvent:
    extra = {"uri": "gs://raw/sales/2024-05-01/day.csv", IDENTITY_KEY: KEY}
    return PlannedAssetEvent(asset, extra, partition_key, "hourly", gcs_event(), KEY)


def airflow(stub: StubAirflow, version: str, assets: list[dict[str, Any]]) -> None:
    prefix = "/api/v2" if version.startswith("3") else "/api/v1"
    stub.always("GET", f"{prefix}/version", Reply(200, {"version": version}))
    kind = "assets" if version.startswith("3") else "datasets"
    stub.reply("GET", f"{prefix}/{kind}", Reply(200, {kind: assets, "total_entries": len(assets)}))


def events(*extras: dict[str, Any], key: str = "asset_events") -> Reply:
    listed = [
        {"id": i, "extra": extra, "timestamp": "2024-05-01T10:00:01+00:00"}
        for i, extra in enumerate(extras, start=1)
    ]
    return Reply(200, {key: listed, "total_entries": len(listed)})


def posted(stub: StubAirflow, path: str) -> list[Any]:
    return [json.loads(r.body) for r in stub.received("POST", path)]


def test_the_asset_is_the_exact_uri_among_what_the_like_filter_returns(stub: StubAirflow) -> None:
    # "_" is a LIKE wildcard: the filter for sales_hourly also returns salesXhourly.
    airflow(
        stub,
        "3.3.2",
        [{"id": 1, "uri": "gs://acme-landing/salesXhourly"}, {"id": 2, "uri": HOURLY}],
    )
    stub.always("GET", V2_EVENTS, events())
    stub.reply("POST", V2_EVENTS, Reply(200, {"id": 7, "asset_id": 2}))

    result = client_for(stub.url).record_asset_event(planned(partition_key="2024-05-01T10"))

    assert (result.outcome, result.asset_event["id"]) == (Outcome.CREATED, 7)
    assert posted(stub, V2_EVENTS) == [
        {"asset_id": 2, "extra": planned().extra, "partition_key": "2024-05-01T10"}
    ]
    [lookup] = stub.received("GET", V2_ASSETS)
    assert "uri_pattern=gs%3A%2F%2Facme-landing%2Fsales_hourly" in lookup.raw_path
    [read] = stub.received("GET", V2_EVENTS)
    assert "asset_id=2" in read.raw_path and "timestamp_gte=2024-05-01T09%3A50" in read.raw_path


def test_an_event_already_holding_the_identity_is_a_duplicate_and_nothing_is_posted(
    stub: StubAirflow,
) -> None:
    airflow(stub, "3.0.6", [{"id": 2, "uri": HOURLY}])
    stub.always("GET", V2_EVENTS, events({"from_rest_api": True, IDENTITY_KEY: KEY}))

    result = client_for(stub.url).record_asset_event(planned())

    assert result.outcome is Outcome.DUPLICATE
    assert posted(stub, V2_EVENTS) == []


def test_a_lost_answer_is_found_by_the_next_attempt_and_counts_as_created(
    stub: StubAirflow,
) -> None:
    airflow(stub, "3.3.2", [{"id": 2, "uri": HOURLY}])
    stub.reply("GET", V2_EVENTS, events(), events({IDENTITY_KEY: KEY}))
    stub.reply("POST", V2_EVENTS, RESET)

    result = client_for(stub.url, fake=FakeTime()).record_asset_event(planned())

    assert (result.outcome, result.attempts) == (Outcome.CREATED, 2)
    assert len(posted(stub, V2_EVENTS)) == 1


def test_airflow_2_is_sent_a_dataset_event_and_read_newest_first_until_before_the_event(
    stub: StubAirflow,
) -> None:
    airflow(stub, "2.11.2", [{"id": 4, "uri": HOURLY, "consuming_dags": [{"dag_id": "c"}]}])
    newer = [{"id": i, "extra": {}, "timestamp": "2024-05-01T10:00:01+00:00"} for i in range(99)]
    older = {"id": 99, "extra": {}, "timestamp": "2024-04-30T00:00:00+00:00"}
    stub.reply("GET", V1_EVENTS, Reply(200, {"dataset_events": [*newer, older]}))
    stub.reply("POST", V1_EVENTS, Reply(200, {"id": 100}))

    result = client_for(stub.url, api_version="v1").record_asset_event(planned())

    assert result.outcome is Outcome.CREATED
    assert posted(stub, V1_EVENTS) == [{"dataset_uri": HOURLY, "extra": planned().extra}]
    [read] = stub.received("GET", V1_EVENTS)  # the older event ended the search: one page
    assert "dataset_id=4" in read.raw_path and "order_by=-timestamp" in read.raw_path


@pytest.mark.parametrize(
    ("version", "partition_key", "needed"),
    [("3.1.8", "2024-05-01T10", "Airflow 3.2 or later"), ("2.8.1", None, "Airflow 2.9 or later")],
    ids=["partitions-before-3.2", "datasets-before-2.9"],
)
def test_a_server_too_old_for_the_route_is_a_configuration_error_and_nothing_is_posted(
    stub: StubAirflow, version: str, partition_key: str | None, needed: str
) -> None:
    airflow(stub, version, [{"id": 2, "uri": HOURLY}])
    stub.always("GET", V2_EVENTS, events())
    api = "v2" if version.startswith("3") else "v1"

    with pytest.raises(ConfigurationError) as caught:
        client_for(stub.url, api_version=api).record_asset_event(
            planned(partition_key=partition_key)
        )

    assert f"runs Airflow {version}" in caught.value.problem
    assert caught.value.fix is not None and needed in caught.value.fix
    assert posted(stub, V2_EVENTS) == posted(stub, V1_EVENTS) == []


def test_an_asset_no_dag_declares_any_more_is_named_inactive(stub: StubAirflow) -> None:
    airflow(stub, "3.3.2", [])
    stub.reply(
        "GET",
        V2_ASSETS,
        Reply(200, {"assets": []}),
        Reply(200, {"assets": [{"id": 2, "uri": HOURLY}]}),
    )

    with pytest.raises(PermanentTriggerError) as caught:
        client_for(stub.url).record_asset_event(planned())

    assert caught.value.problem.startswith(f"Asset {HOURLY!r} at Airflow at")
    assert "is not active" in caught.value.problem
    assert not caught.value.retryable
    assert "only_active=false" in stub.received("GET", V2_ASSETS)[-1].raw_path


def test_an_asset_gone_since_it_was_found_is_looked_up_again_not_failed(
    stub: StubAirflow,
) -> None:
    # Its DAG was redeployed: the asset now has another id.
    airflow(stub, "3.3.2", [{"id": 2, "uri": HOURLY}])
    stub.reply("GET", V2_ASSETS, Reply(200, {"assets": [{"id": 5, "uri": HOURLY}]}))
    stub.always("GET", V2_EVENTS, events())
    stub.reply("POST", V2_EVENTS, Reply(404, {"detail": "Asset with ID: `2` was not found"}))
    stub.reply("POST", V2_EVENTS, Reply(200, {"id": 8, "asset_id": 5}))

    result = client_for(stub.url, fake=FakeTime()).record_asset_event(planned())

    assert (result.outcome, result.attempts) == (Outcome.CREATED, 2)
    assert [body["asset_id"] for body in posted(stub, V2_EVENTS)] == [2, 5]
