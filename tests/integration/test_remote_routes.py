"""DAGTRIGGER_ROUTES from gs:// and s3://, read by google-cloud-storage and boto3 from local stand-ins."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.errors import ConfigurationError
from dagtrigger.events import Event, normalise
from dagtrigger.routes_source import MAX_ROUTES_BYTES
from dagtrigger.runtime import build_router
from dagtrigger.settings import Settings
from tools.local_airflow import free_port

EVENT = json.loads(
    (
        Path(__file__).resolve().parent.parent / "events" / "gcs_cloudevent_finalized.json"
    ).read_text()
)
ROUTES = [{"name": "sales", "match": {"prefix": "sales/"}, "dag_id": "load_sales"}]
# Valid routes followed by spaces: 3 MiB, of which a reader may fetch no more than the cap.
OVERSIZED = json.dumps(ROUTES).encode().ljust(3 * MAX_ROUTES_BYTES)


@pytest.fixture
def gcs_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="routes-bucket")
    server.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    try:
        yield "routes-bucket"
    finally:
        server.stop()


@pytest.fixture
def s3_standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield "routes-bucket"
    finally:
        server.stop()


def _route_names(routes_url: str) -> list[str]:
    settings = Settings.from_env({"DAGTRIGGER_ROUTES": routes_url})
    routing = build_router(settings)().route(_event())
    return [trigger.dag_id for trigger in routing.triggers]


def _event() -> Event:
    (event,) = normalise(EVENT).events
    return event


def test_routes_from_gcs_are_read_with_google_cloud_storage(gcs_emulator: str) -> None:
    from google.cloud import storage

    storage.Client().bucket(gcs_emulator).blob("dagtrigger/routes.json").upload_from_string(
        json.dumps(ROUTES), content_type="application/json"
    )
    assert _route_names(f"gs://{gcs_emulator}/dagtrigger/routes.json") == ["load_sales"]


def test_a_missing_gcs_routes_object_names_the_variable_and_the_role(gcs_emulator: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _route_names(f"gs://{gcs_emulator}/missing.json")
    assert "DAGTRIGGER_ROUTES=gs://" in str(caught.value)
    assert "roles/storage.objectViewer" in str(caught.value)


def _upload_to_gcs(bucket: str, key: str, body: bytes) -> None:
    from google.cloud import storage

    storage.Client().bucket(bucket).blob(key).upload_from_string(body)


def assert_refused_with_its_size(url: str) -> None:
    """OVERSIZED at `url` is refused, naming its size and the cap."""
    with pytest.raises(ConfigurationError) as caught:
        _route_names(url)
    assert caught.value.problem == (
        f"DAGTRIGGER_ROUTES={url} is 3,145,728 bytes; routes may be at most 1,048,576 bytes (1 MiB)"
    )


def assert_refused_as_invalid_json(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"routes.json is not valid JSON: Expecting value"):
        _route_names(url)


def test_a_gcs_routes_object_over_the_cap_is_refused_with_its_size(gcs_emulator: str) -> None:
    _upload_to_gcs(gcs_emulator, "routes.json", OVERSIZED)

    assert_refused_with_its_size(f"gs://{gcs_emulator}/routes.json")


def test_an_empty_gcs_routes_object_is_invalid_json(gcs_emulator: str) -> None:
    _upload_to_gcs(gcs_emulator, "routes.json", b"")

    assert_refused_as_invalid_json(f"gs://{gcs_emulator}/routes.json")


def _s3_bucket(name: str) -> Any:
    import boto3

    s3 = boto3.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):  # moto keeps its buckets
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return s3


def test_routes_from_s3_are_read_with_boto3(s3_standin: str) -> None:
    s3 = _s3_bucket(s3_standin)
    s3.put_object(Bucket=s3_standin, Key="routes.json", Body=json.dumps(ROUTES).encode())
    assert _route_names(f"s3://{s3_standin}/routes.json") == ["load_sales"]


def test_an_s3_routes_object_over_the_cap_is_refused_with_its_size(s3_standin: str) -> None:
    s3 = _s3_bucket(s3_standin)
    s3.put_object(Bucket=s3_standin, Key="routes.json", Body=OVERSIZED)

    assert_refused_with_its_size(f"s3://{s3_standin}/routes.json")


def test_an_empty_s3_routes_object_is_invalid_json(s3_standin: str) -> None:
    s3 = _s3_bucket(s3_standin)
    s3.put_object(Bucket=s3_standin, Key="routes.json", Body=b"")

    assert_refused_as_invalid_json(f"s3://{s3_standin}/routes.json")


def test_a_missing_s3_routes_object_names_the_permission(s3_standin: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _route_names(f"s3://{s3_standin}/missing.json")
    assert "s3:GetObject" in str(caught.value)
