"""Targeted tests of the event normalisers: decoding, identity across envelopes, errors, hostility."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrigger.errors import EventError, UnsupportedEventError
from dagtrigger.events import (
    Event,
    Normalised,
    normalise,
    normalise_background,
    normalise_cloudevent,
    normalise_sqs_record,
)
from dagtrigger.events.model import PROVIDERS

EVENTS = Path(__file__).resolve().parents[1] / "events"
GOLDEN = sorted(p.stem for p in EVENTS.glob("*.json") if not p.name.endswith(".expected.json"))
TEST_EVENT_SKIPPED = "S3 test event (sent when notifications are configured)"


def load(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def only(result: Normalised) -> Event:
    assert len(result.events) == 1, result
    return result.events[0]


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


# --- payload builders -----------------------------------------------------------------------


def gcs_object(**changes: Any) -> dict[str, Any]:
    return {**load("gcs_cloudevent_finalized")["data"], **changes}


def gcs_cloudevent(kind: str, obj: dict[str, Any], event_id: str = "ce-1") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"//storage.googleapis.com/projects/_/buckets/{obj.get('bucket', 'acme-landing')}",
        "type": f"google.cloud.storage.object.v1.{kind}",
        "time": "2024-06-01T06:15:02.437Z",
        "data": obj,
    }


def gcs_notification(
    event_type: str, obj: dict[str, Any], payload_format: str = "JSON_API_V1"
) -> dict[str, Any]:
    """A Pub/Sub push body carrying a Cloud Storage notification for `obj`."""
    message: dict[str, Any] = {
        "attributes": {
            "bucketId": obj["bucket"],
            "objectId": obj["name"],
            "objectGeneration": obj["generation"],
            "eventType": event_type,
            "eventTime": "2024-06-01T06:15:02.437Z",
            "payloadFormat": payload_format,
            "notificationConfig": "projects/_/buckets/acme-landing/notificationConfigs/7",
        },
        "messageId": "pubsub-77",
        "publishTime": "2024-06-01T06:15:03.001Z",
    }
    if payload_format == "JSON_API_V1":
        message["data"] = b64(json.dumps(obj))
    return {"message": message, "subscription": "projects/acme/subscriptions/push"}


def pubsub_push(data: str | None, attributes: Any = None, message_id: Any = "m-1") -> Any:
    message: dict[str, Any] = {"messageId": message_id, "publishTime": "2024-06-01T00:00:00Z"}
    if data is not None:
        message["data"] = data
    if attributes is not None:
        message["attributes"] = attributes
    return {"message": message, "subscription": "projects/acme/subscriptions/push"}


def s3_record(key: str = "sales/2024-06-01/orders.csv", **object_fields: Any) -> dict[str, Any]:
    record = copy.deepcopy(load("s3_put")["Records"][0])
    record["s3"]["object"] = {"key": key, "size": 10, "eTag": "e", **object_fields}
    return record


def sqs_record(body: str, message_id: str = "sqs-1") -> dict[str, Any]:
    record = copy.deepcopy(load("sqs_plain_text")["Records"][0])
    record.update(body=body, messageId=message_id, messageAttributes={})
    return record


def sns_envelope(message: str, message_id: str = "sns-1") -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:events",
        "Message": message,
        "Timestamp": "2024-06-01T06:15:02.601Z",
    }


def sns_record(message: str, message_id: str = "sns-1") -> dict[str, Any]:
    return {"EventSource": "aws:sns", "Sns": sns_envelope(message, message_id)}


def s3_bridge(detail_type: str, **detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(load("s3_eventbridge_object_created"))
    event["detail-type"] = detail_type
    for name in ("reason", "deletion-type"):
        event["detail"].pop(name, None)
    event["detail"].update(detail)
    return event


# --- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("reports/2024+Q2/summary%2Bfinal.pdf", "reports/2024 Q2/summary+final.pdf"),
        ("inbound/caf%C3%A9+men%C3%BC.csv", "inbound/café menü.csv"),
        ("dt%3D2024-06-01/_SUCCESS", "dt=2024-06-01/_SUCCESS"),
        ("100%25+done.txt", "100% done.txt"),
    ],
)
def test_s3_notification_key_is_url_decoded(encoded: str, decoded: str) -> None:
    event = only(normalise({"Records": [s3_record(encoded)]}))
    assert event.object is not None
    assert event.object.name == decoded
    assert event.object.uri == f"s3://acme-raw-eu/{decoded}"
    assert event.identity[3] == decoded


def test_eventbridge_key_is_taken_as_is() -> None:
    bridge = s3_bridge("Object Created", reason="PutObject")
    bridge["detail"]["object"]["key"] = "literal+plus%2B and space.csv"
    event = only(normalise(bridge))
    assert event.object is not None
    assert event.object.name == "literal+plus%2B and space.csv"


def test_gcs_object_names_are_not_decoded() -> None:
    event = only(normalise(gcs_cloudevent("finalized", gcs_object(name="a+b%2Bc d.csv"))))
    assert event.object is not None
    assert event.object.name == "a+b%2Bc d.csv"


def test_gcs_int64_strings_become_numbers_and_generation_stays_text() -> None:
    obj = gcs_object(size="9007199254740993", generation=1717222502437011, metageneration="07")
    event = only(normalise(gcs_cloudevent("metadataUpdated", obj)))
    assert event.object is not None
    assert event.object.size == 9007199254740993  # beyond float precision: parsed as int
    assert event.object.version == "1717222502437011"
    assert event.identity[-1] == "7"  # "07" and 7 are the same metageneration


@pytest.mark.parametrize("size", ["12abc", "-1", "1.5", "", " 12", True, 1.5, [], {}])
def test_non_numeric_gcs_size_is_an_event_error(size: Any) -> None:
    with pytest.raises(EventError, match=r"CloudEvent data field size is .*, not a whole number"):
        normalise(gcs_cloudevent("finalized", gcs_object(size=size)))


@pytest.mark.parametrize(
    ("raw", "data", "encoding"),
    [
        (b'{"table": "orders"}', {"table": "orders"}, None),
        (b"42", 42, None),
        (b"refresh orders", "refresh orders", None),
        (b"NaN", "NaN", None),  # not strict JSON: a conf must never hold NaN
        (b"1e999", "1e999", None),  # would be Infinity
        (b"[" * 100_000, "[" * 100_000, None),  # too deep to parse: kept as text
        ("Zürich".encode(), "Zürich", None),
        (b"\xff\xfe\x00binary", b64(b"\xff\xfe\x00binary"), "base64"),
    ],
)
def test_pubsub_data_decoding(raw: bytes, data: Any, encoding: str | None) -> None:
    event = only(normalise(pubsub_push(b64(raw))))
    assert event.message is not None
    assert event.message.data == data
    assert event.message.data_encoding == encoding
    json.dumps(event.default_conf(), allow_nan=False)


@pytest.mark.parametrize("data", [None, ""])
def test_pubsub_without_data_has_none(data: str | None) -> None:
    event = only(normalise(pubsub_push(data, {"k": "v"})))
    assert event.message is not None
    assert event.message.data is None
    assert event.message.attributes == {"k": "v"}


def test_sqs_sent_timestamp_becomes_iso_utc_with_milliseconds() -> None:
    record = sqs_record("x")
    record["attributes"]["SentTimestamp"] = "1717236000007"
    assert only(normalise_sqs_record(record)).event_time == "2024-06-01T10:00:00.007Z"


def test_sqs_binary_attribute_keeps_its_base64_value() -> None:
    record = sqs_record("x")
    record["messageAttributes"] = {
        "blob": {"binaryValue": "AAEC", "dataType": "Binary"},
        "n": {"stringValue": "5", "dataType": "Number"},
    }
    event = only(normalise_sqs_record(record))
    assert event.message is not None
    assert event.message.attributes == {"blob": "AAEC", "n": "5"}


def test_cloudevent_data_may_be_dict_text_or_bytes() -> None:
    attributes = {k: v for k, v in gcs_cloudevent("finalized", {}).items() if k != "data"}
    as_dict = normalise_cloudevent(attributes, gcs_object())
    as_text = normalise_cloudevent(attributes, json.dumps(gcs_object()))
    as_bytes = normalise_cloudevent(attributes, json.dumps(gcs_object()).encode())
    assert as_dict == as_text == as_bytes


def test_structured_cloudevent_with_json_text_or_data_base64() -> None:
    event = gcs_cloudevent("finalized", gcs_object())
    as_text = {**event, "data": json.dumps(event["data"])}
    as_base64 = {k: v for k, v in event.items() if k != "data"}
    as_base64["data_base64"] = b64(json.dumps(event["data"]))
    assert normalise(event) == normalise(as_text) == normalise(as_base64)


def test_payload_may_be_json_text_or_bytes() -> None:
    payload = load("eventbridge_custom")
    assert (
        normalise(json.dumps(payload))
        == normalise(json.dumps(payload).encode())
        == normalise(payload)
    )


def test_pubsub_background_event_takes_id_and_time_from_context() -> None:
    data = {"@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage", "data": b64("hi")}
    context = {
        "event_id": "ctx-9",
        "timestamp": "2024-06-01T00:00:09Z",
        "event_type": "providers/cloud.pubsub/eventTypes/topic.publish",
        "resource": "projects/acme/topics/t",
    }
    event = only(normalise_background(data, context))
    assert (event.event_id, event.event_time, event.identity) == (
        "ctx-9",
        "2024-06-01T00:00:09Z",
        ("pubsub", "ctx-9"),
    )
    assert event.message is not None and event.message.data == "hi"


def test_background_event_names_the_object_from_resource_when_data_does_not() -> None:
    obj = {k: v for k, v in gcs_object().items() if k not in ("bucket", "name")}
    context = {
        "eventId": "1",
        "eventType": "google.storage.object.delete",
        "resource": "projects/_/buckets/acme-landing/objects/sales/2024-06-01/orders.csv",
    }
    event = only(normalise_background(obj, context))
    assert event.object is not None
    assert event.object.uri == "gs://acme-landing/sales/2024-06-01/orders.csv"


# --- identity across envelopes --------------------------------------------------------------


def test_gcs_identity_is_the_same_in_every_envelope() -> None:
    obj = gcs_object()
    legacy_context = {
        "eventId": "legacy-1",
        "timestamp": "2024-06-01T06:15:02.437Z",
        "eventType": "google.storage.object.finalize",
        "resource": {"service": "storage.googleapis.com", "name": "projects/_/buckets/x/objects/y"},
    }
    forms = [
        normalise(gcs_cloudevent("finalized", obj)),
        normalise({"context": legacy_context, "data": obj}),
        normalise({**legacy_context, "data": obj}),  # the older flat form
        normalise_background(
            obj, {"event_id": "legacy-2", "event_type": legacy_context["eventType"]}
        ),
        normalise(gcs_notification("OBJECT_FINALIZE", obj)),
        normalise(gcs_notification("OBJECT_FINALIZE", obj, payload_format="NONE")),
        normalise(load("gcs_notification_pubsub_json_api_v1")),
    ]
    identities = {only(form).identity for form in forms}
    assert identities == {
        ("gcs", "finalized", "acme-landing", "sales/2024-06-01/orders.csv", "1717222502437011")
    }
    assert {only(form).provider for form in forms} == {"gcs"}


def test_gcs_metadata_update_identity_agrees_between_cloudevent_and_notification() -> None:
    obj = gcs_object(metageneration="4")
    from_cloudevent = only(normalise(gcs_cloudevent("metadataUpdated", obj)))
    from_pubsub = only(normalise(gcs_notification("OBJECT_METADATA_UPDATE", obj)))
    assert from_cloudevent.identity == from_pubsub.identity
    assert from_cloudevent.identity[-2:] == ("1717222502437011", "4")


def s3_forms(record: dict[str, Any]) -> dict[str, Normalised]:
    notification = json.dumps({"Records": [record]})
    return {
        "direct": normalise({"Records": [record]}),
        "sqs": normalise({"Records": [sqs_record(notification)]}),
        "sqs record": normalise_sqs_record(sqs_record(notification)),
        "sns": normalise({"Records": [sns_record(notification)]}),
        "sns in sqs": normalise({"Records": [sqs_record(json.dumps(sns_envelope(notification)))]}),
    }


def test_s3_identity_is_the_same_in_every_envelope() -> None:
    record = load("s3_put")["Records"][1]
    forms = s3_forms(record)
    forms["eventbridge"] = normalise(load("s3_eventbridge_object_created"))
    identities = {name: only(form).identity for name, form in forms.items()}
    assert set(identities.values()) == {
        (
            "s3",
            "ObjectCreated",
            "acme-raw-eu",
            "reports/2024 Q2/summary+final résumé.pdf",
            "pQ4xM2rT8vZ1bN6cW3yH5jK7lS9dF0gA",
        )
    }, identities
    assert {only(form).provider for form in forms.values()} == {"s3"}


def test_s3_identity_of_an_unversioned_object_uses_the_sequencer_in_every_envelope() -> None:
    record = s3_record("raw/a b.csv", sequencer="00665B1C2D3E4F5061")
    bridge = s3_bridge("Object Created", reason="PutObject")
    bridge["detail"]["object"] = {
        "key": "raw/a b.csv",
        "size": 10,
        "sequencer": "00665B1C2D3E4F5061",
    }
    forms = {**s3_forms(record), "eventbridge": normalise(bridge)}
    identities = {only(form).identity for form in forms.values()}
    assert identities == {
        ("s3", "ObjectCreated", "acme-raw-eu", "raw/a b.csv", "00665B1C2D3E4F5061")
    }


def test_delete_marker_identity_agrees_between_notification_and_eventbridge() -> None:
    assert (
        only(normalise(load("s3_delete_marker"))).identity
        == only(normalise(load("s3_eventbridge_object_deleted"))).identity
    )


def test_plain_sns_message_has_the_same_identity_directly_and_through_sqs() -> None:
    direct = only(normalise({"Records": [sns_record("hello", "sns-42")]}))
    queued = only(normalise_sqs_record(sqs_record(json.dumps(sns_envelope("hello", "sns-42")))))
    assert direct.identity == queued.identity == ("sns", "sns-42")
    assert direct.provider == queued.provider == "sns"
    assert direct.message == queued.message


def test_eventbridge_event_has_the_same_identity_directly_and_through_sqs() -> None:
    direct = only(normalise(load("eventbridge_custom")))
    queued = only(normalise(load("sqs_eventbridge")))
    assert direct == queued


# --- distinct events, distinct identities ---------------------------------------------------


def test_distinct_gcs_events_have_distinct_identities() -> None:
    identities = [
        only(normalise(gcs_cloudevent(kind, gcs_object(**changes)))).identity
        for kind, changes in [
            ("finalized", {}),
            ("finalized", {"generation": "1717222502437012"}),
            ("finalized", {"name": "sales/2024-06-02/orders.csv"}),
            ("finalized", {"bucket": "acme-other"}),
            ("deleted", {}),
            ("archived", {}),
            ("metadataUpdated", {"metageneration": "2"}),
            ("metadataUpdated", {"metageneration": "3"}),
        ]
    ]
    assert len(set(identities)) == len(identities)


def test_gcs_event_without_generation_falls_back_to_its_event_id() -> None:
    obj = {k: v for k, v in gcs_object().items() if k not in ("generation", "metageneration")}
    first = only(normalise(gcs_cloudevent("metadataUpdated", obj, event_id="a"))).identity
    second = only(normalise(gcs_cloudevent("metadataUpdated", obj, event_id="b"))).identity
    assert first != second


def test_distinct_s3_events_have_distinct_identities() -> None:
    def identity(record: dict[str, Any]) -> tuple[str, ...]:
        return only(normalise({"Records": [record]})).identity

    def removed(event_name: str, request_id: str, **obj: Any) -> dict[str, Any]:
        record = s3_record(**obj)
        record["eventName"] = event_name
        record["responseElements"]["x-amz-request-id"] = request_id
        return record

    identities = [
        # a delete marker is created, then itself deleted: one version id, two events
        identity(removed("ObjectRemoved:DeleteMarkerCreated", "R1", versionId="M", sequencer="1")),
        identity(removed("ObjectRemoved:Delete", "R2", versionId="M", sequencer="2")),
        # versioning suspended: every overwrite has version "null", the sequencer tells them apart
        identity(removed("ObjectCreated:Put", "R3", versionId="null", sequencer="3")),
        identity(removed("ObjectCreated:Put", "R4", versionId="null", sequencer="4")),
        # tags can change many times on one version
        identity(removed("ObjectTagging:Put", "R5", versionId="V")),
        identity(removed("ObjectTagging:Put", "R6", versionId="V")),
        # a restore starts and completes on one version
        identity(removed("ObjectRestore:Post", "R7", versionId="V")),
        identity(removed("ObjectRestore:Completed", "R7", versionId="V")),
        identity(removed("ObjectCreated:Put", "R8", versionId="V")),
    ]
    assert len(set(identities)) == len(identities), identities


def test_s3_record_without_version_or_sequencer_is_told_apart_by_request_id() -> None:
    first, second = s3_record(), s3_record()
    second["responseElements"]["x-amz-request-id"] = "OTHER"
    identities = {only(normalise({"Records": [r]})).identity for r in (first, second)}
    assert len(identities) == 2
    assert (
        "s3",
        "ObjectCreated",
        "acme-raw-eu",
        "sales/2024-06-01/orders.csv",
        "request:OTHER",
    ) in (identities)


def test_message_identities_do_not_collide_across_transports() -> None:
    pubsub = only(normalise(pubsub_push(b64("x"), message_id="same")))
    sqs = only(normalise_sqs_record(sqs_record("x", message_id="same")))
    sns = only(normalise({"Records": [sns_record("x", "same")]}))
    assert len({pubsub.identity, sqs.identity, sns.identity}) == 3


# --- S3 via EventBridge vocabulary ----------------------------------------------------------


@pytest.mark.parametrize(
    ("detail_type", "detail", "event_type"),
    [
        ("Object Created", {"reason": "PutObject"}, "ObjectCreated:Put"),
        ("Object Created", {"reason": "POST Object"}, "ObjectCreated:Post"),
        ("Object Created", {"reason": "CopyObject"}, "ObjectCreated:Copy"),
        (
            "Object Created",
            {"reason": "CompleteMultipartUpload"},
            "ObjectCreated:CompleteMultipartUpload",
        ),
        ("Object Created", {}, "ObjectCreated:*"),
        (
            "Object Deleted",
            {"reason": "DeleteObject", "deletion-type": "Permanently Deleted"},
            "ObjectRemoved:Delete",
        ),
        (
            "Object Deleted",
            {"reason": "DeleteObject", "deletion-type": "Delete Marker Created"},
            "ObjectRemoved:DeleteMarkerCreated",
        ),
        (
            "Object Deleted",
            {"reason": "Lifecycle Expiration", "deletion-type": "Permanently Deleted"},
            "LifecycleExpiration:Delete",
        ),
        (
            "Object Deleted",
            {"reason": "Lifecycle Expiration", "deletion-type": "Delete Marker Created"},
            "LifecycleExpiration:DeleteMarkerCreated",
        ),
        ("Object Restore Initiated", {}, "ObjectRestore:Post"),
        ("Object Restore Completed", {}, "ObjectRestore:Completed"),
        ("Object Restore Expired", {}, "ObjectRestore:Delete"),
        ("Object Tags Added", {}, "ObjectTagging:Put"),
        ("Object Tags Deleted", {}, "ObjectTagging:Delete"),
        ("Object ACL Updated", {}, "ObjectAcl:Put"),
        ("Object Storage Class Changed", {}, "LifecycleTransition"),
        ("Object Access Tier Changed", {}, "IntelligentTiering"),
    ],
)
def test_s3_eventbridge_types_map_onto_notification_names(
    detail_type: str, detail: dict[str, str], event_type: str
) -> None:
    event = only(normalise(s3_bridge(detail_type, **detail)))
    assert (event.provider, event.event_type) == ("s3", event_type)


def test_lifecycle_expiration_matches_between_eventbridge_and_notification() -> None:
    record = s3_record(versionId="V1", sequencer="5")
    record["eventName"] = "LifecycleExpiration:Delete"
    bridge = s3_bridge("Object Deleted", reason="Lifecycle Expiration")
    bridge["detail"]["deletion-type"] = "Permanently Deleted"
    bridge["detail"]["object"] = {"key": "sales/2024-06-01/orders.csv", "version-id": "V1"}
    assert only(normalise({"Records": [record]})).identity == only(normalise(bridge)).identity


def test_other_s3_eventbridge_events_stay_eventbridge_events() -> None:
    event = only(normalise(s3_bridge("Async Copy Completion")))
    assert (event.provider, event.event_type) == ("eventbridge", "Async Copy Completion")
    assert event.bridge is not None and event.bridge.source == "aws.s3"


# --- what bodies carry ----------------------------------------------------------------------


def test_mixed_records_are_each_normalised_in_order() -> None:
    result = normalise(
        {"Records": [s3_record(), sqs_record("plain"), sns_record("hello"), s3_record("b")]}
    )
    assert [e.provider for e in result.events] == ["s3", "sqs", "sns", "s3"]


def test_sqs_body_with_non_s3_records_is_a_plain_message() -> None:
    body = json.dumps({"Records": [{"eventSource": "custom", "n": 1}]})
    event = only(normalise_sqs_record(sqs_record(body)))
    assert (event.provider, event.event_type) == ("sqs", "aws:sqs")
    assert event.message is not None
    assert event.message.data == {"Records": [{"eventSource": "custom", "n": 1}]}


def test_sns_inside_sns_is_looked_into_only_once() -> None:
    inner = json.dumps(sns_envelope("deep", "inner"))
    event = only(normalise({"Records": [sns_record(inner, "outer")]}))
    assert event.identity == ("sns", "outer")
    assert event.message is not None and event.message.data["MessageId"] == "inner"


def test_a_plain_pubsub_message_with_an_eventtype_attribute_is_not_a_notification() -> None:
    event = only(normalise(pubsub_push(b64("x"), {"eventType": "OBJECT_FINALIZE"})))
    assert event.provider == "pubsub"


# --- the S3 test event ----------------------------------------------------------------------


def test_s3_test_event_is_skipped_wherever_it_arrives() -> None:
    test_event = json.dumps(load("s3_test_event"))
    expected = Normalised(events=(), skipped=(TEST_EVENT_SKIPPED,))
    assert normalise(load("s3_test_event")) == expected
    assert normalise_sqs_record(sqs_record(test_event)) == expected
    assert normalise({"Records": [sqs_record(json.dumps(sns_envelope(test_event)))]}) == expected
    assert normalise({"Records": [sns_record(test_event)]}) == expected


def test_s3_test_event_in_a_batch_skips_only_itself() -> None:
    result = normalise({"Records": [sqs_record(json.dumps(load("s3_test_event"))), s3_record()]})
    assert [e.provider for e in result.events] == ["s3"]
    assert result.skipped == (TEST_EVENT_SKIPPED,)


# --- malformed input: EventError naming what and where --------------------------------------


def without(mapping: dict[str, Any], *path: str) -> dict[str, Any]:
    result = copy.deepcopy(mapping)
    target = result
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return result


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "event payload is null, not a JSON object"),
        ([1, 2], "event payload is a list, not a JSON object"),
        ("{not json", "event payload is not JSON"),
        (b"\xff\xfe", "event payload is not UTF-8 text"),
        ({"Records": []}, "Lambda event field Records is an empty list"),
        ({"Records": "x"}, "Lambda event field Records is 'x', not a list"),
        ({"Records": [s3_record(), 7]}, "Lambda record 2 is a number, not a JSON object"),
        (
            {"Records": [s3_record(), without(s3_record(), "s3", "object", "key")]},
            "S3 record 2 has no s3.object.key",
        ),
        (
            {"Records": [s3_record(key=["k"])]},  # type: ignore[arg-type]
            "S3 record 1 field s3.object.key is a list, not a string",
        ),
        (
            {"Records": [s3_record(size="big")]},
            "S3 record 1 field s3.object.size is 'big', not a whole number",
        ),
        (
            {"Records": [sqs_record(json.dumps({"Records": [without(s3_record(), "s3")]}))]},
            "S3 record 1 in SQS message 'sqs-1' has no s3",
        ),
        ({"Records": [without(sqs_record("x"), "body")]}, "SQS message 'sqs-1' has no body"),
        ({"Records": [without(sqs_record("x"), "messageId")]}, "SQS record 1 has no messageId"),
        (
            {"Records": [{**sqs_record("x"), "attributes": {"SentTimestamp": "yesterday"}}]},
            "SQS message 'sqs-1' field attributes.SentTimestamp is 'yesterday', not a whole number",
        ),
        (
            {"Records": [{**sqs_record("x"), "attributes": {"SentTimestamp": "9" * 18}}]},
            "SQS message 'sqs-1' field attributes.SentTimestamp (999999999999999999) is out of range",
        ),
        (
            {"Records": [{**sqs_record("x"), "messageAttributes": {"a": {"dataType": "String"}}}]},
            "SQS message 'sqs-1' has no messageAttributes.a.stringValue",
        ),
        ({"Records": [{"EventSource": "aws:sns"}]}, "SNS record 1 has no Sns"),
        (
            {"Records": [{"EventSource": "aws:sns", "Sns": without(sns_envelope("x"), "Message")}]},
            "SNS message 'sns-1' has no Sns.Message",
        ),
        (pubsub_push("not base64!"), "Pub/Sub message data is not valid base64"),
        (pubsub_push("QUJD", {"k": 1}), "Pub/Sub push body field message.attributes.k is a number"),
        (pubsub_push("QUJD", message_id=None), "Pub/Sub push body has no message.messageId"),
        ({"message": "hi", "subscription": "s"}, "Pub/Sub push body field message is 'hi'"),
        (
            {**gcs_cloudevent("finalized", gcs_object()), "data": "{"},
            "google.cloud.storage.object.v1.finalized CloudEvent data is not JSON",
        ),
        (
            {**gcs_cloudevent("finalized", gcs_object()), "data": None},
            "google.cloud.storage.object.v1.finalized CloudEvent data is missing",
        ),
        (
            {**gcs_cloudevent("finalized", gcs_object()), "data_base64": "%%%", "data": None},
            "CloudEvent data_base64 is not valid base64",
        ),
        (
            gcs_cloudevent("finalized", without(gcs_object(), "bucket")),
            "google.cloud.storage.object.v1.finalized CloudEvent data has no bucket",
        ),
        (
            gcs_cloudevent("finalized", gcs_object(metadata={"a": "x", "b": 1})),
            "google.cloud.storage.object.v1.finalized CloudEvent data field metadata.b is a number,"
            " not a string",
        ),
        (without(gcs_cloudevent("finalized", gcs_object()), "id"), "CloudEvent has no id"),
        (
            {"specversion": "1.0", "type": 5},
            "CloudEvent field type is a number, not a string",
        ),
        (
            {"eventId": "1", "eventType": "google.storage.object.finalize", "data": {"size": 1}},
            "background event data has no bucket and name, and no resource names the object",
        ),
        (
            {
                "eventId": "1",
                "eventType": "google.storage.object.finalize",
                "resource": "projects/p/topics/t",
                "data": {},
            },
            "background event context resource 'projects/p/topics/t' does not name",
        ),
        (
            {**load("eventbridge_custom"), "detail": "x"},
            "EventBridge event field detail is 'x', not a JSON object",
        ),
        (
            {**load("eventbridge_custom"), "resources": ["arn", 1]},
            "EventBridge event field resources holds a number, not only strings",
        ),
        (
            {"Records": [sqs_record(json.dumps({**load("eventbridge_custom"), "id": None}))]},
            "EventBridge event in SQS message 'sqs-1' has no id",
        ),
    ],
)
def test_malformed_input_names_what_is_wrong_and_where(payload: Any, message: str) -> None:
    with pytest.raises(EventError) as caught:
        normalise(payload)
    assert not isinstance(caught.value, UnsupportedEventError)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_gcs_notification_with_json_payload_that_is_not_an_object() -> None:
    push = gcs_notification("OBJECT_FINALIZE", gcs_object())
    push["message"]["data"] = b64("[1, 2]")
    with pytest.raises(EventError, match=r"^Cloud Storage notification payload is a list"):
        normalise(push)


# --- unsupported kinds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {
                **gcs_cloudevent("finalized", {}),
                "type": "google.cloud.firestore.document.v1.written",
            },
            r"CloudEvent type 'google\.cloud\.firestore\.document\.v1\.written' is not supported;"
            r" supported: google\.cloud\.storage\.object\.v1\.finalized, ",
        ),
        (
            {"Records": [s3_record(), {"eventSource": "aws:dynamodb"}]},
            r"Lambda record 2 has 'aws:dynamodb'; supported: aws:s3, aws:sqs, aws:sns",
        ),
        ({"Records": [{"body": "x"}]}, r"Lambda record 1 has no eventSource; supported: aws:s3"),
        (
            {"hello": 1, "world": 2},
            r"event payload with keys 'hello', 'world' is of no supported kind; supported: ",
        ),
        (
            {
                "context": {
                    "eventId": "1",
                    "eventType": "providers/firebase.auth/eventTypes/user.create",
                },
                "data": {},
            },
            r"background event type 'providers/firebase\.auth/eventTypes/user\.create' is not"
            r" supported; supported: google\.storage\.object\.finalize",
        ),
        (
            gcs_notification("OBJECT_RETENTION_UPDATE", gcs_object()),
            r"Cloud Storage notification eventType 'OBJECT_RETENTION_UPDATE' is not supported;"
            r" supported: OBJECT_FINALIZE",
        ),
    ],
)
def test_unsupported_kinds_name_what_was_seen_and_what_is_supported(
    payload: Any, message: str
) -> None:
    with pytest.raises(UnsupportedEventError, match=f"^{message}"):
        normalise(payload)


def test_unsupported_message_lists_few_keys_and_stays_short() -> None:
    payload = {f"key{n:03}\nx": n for n in range(500)}
    with pytest.raises(UnsupportedEventError) as caught:
        normalise(payload)
    text = str(caught.value)
    assert "\n" not in text and "and 492 more" in text and len(text) < 600


# --- hostile input: nothing but EventError, ever --------------------------------------------

HOSTILE: list[Any] = [
    None,
    [],
    {},
    0,
    -1,
    2**70,
    1.5,
    True,
    "",
    "x",
    "%zz",
    "null",
    [None],
    {"": 0},
]


def variants(value: Any) -> Iterator[Any]:
    """Every copy of `value` with one node replaced by something hostile, or deleted.

    JSON text and base64 JSON inside strings (SQS bodies, SNS messages, Pub/Sub data) are
    mutated inside too, then re-encoded, so the nested envelopes get the same treatment.
    """
    yield from HOSTILE
    if isinstance(value, dict):
        for key, item in value.items():
            yield {k: v for k, v in value.items() if k != key}
            for variant in variants(item):
                yield {**value, key: variant}
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for variant in variants(item):
                yield [*value[:index], variant, *value[index + 1 :]]
    elif isinstance(value, str):
        inner, encode = embedded_json(value)
        if encode is not None:
            for variant in variants(inner):
                yield encode(variant)


def embedded_json(text: str) -> tuple[Any, Any]:
    """(parsed value, re-encoder) when `text` is JSON or base64 of JSON holding a container."""
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict | list):
            return parsed, json.dumps
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z0-9+/]{8,}={0,2}", text):
        try:
            parsed = json.loads(base64.b64decode(text))
            if isinstance(parsed, dict | list):
                return parsed, lambda v: b64(json.dumps(v))
        except ValueError:
            pass
    return None, None


def assert_sound(result: Normalised) -> None:
    """What every caller relies on: usable identities and a conf that is strict JSON."""
    assert isinstance(result, Normalised)
    for event in result.events:
        assert event.provider in PROVIDERS
        assert isinstance(event.event_id, str) and event.event_id
        assert isinstance(event.event_type, str) and event.event_type
        assert event.event_time is None or isinstance(event.event_time, str)
        assert event.identity and all(isinstance(p, str) and p for p in event.identity)
        json.dumps(event.default_conf(), allow_nan=False)
    assert all(isinstance(reason, str) for reason in result.skipped)


@pytest.mark.parametrize("name", GOLDEN)
def test_every_one_node_corruption_of_a_golden_payload_ends_in_normalised_or_event_error(
    name: str,
) -> None:
    outcomes = {"normalised": 0, "rejected": 0}
    for variant in variants(load(name)):
        try:
            result = normalise(variant)
        except EventError as exc:
            assert "\n" not in str(exc)
            outcomes["rejected"] += 1
        else:
            assert_sound(result)
            outcomes["normalised"] += 1
    assert outcomes["rejected"] > 0 and outcomes["normalised"] > 0, outcomes


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "Records",
                    "eventSource",
                    "EventSource",
                    "aws:s3",
                    "aws:sqs",
                    "aws:sns",
                    "s3",
                    "object",
                    "key",
                    "bucket",
                    "name",
                    "body",
                    "messageId",
                    "message",
                    "subscription",
                    "data",
                    "attributes",
                    "context",
                    "eventType",
                    "eventId",
                    "specversion",
                    "type",
                    "id",
                    "detail-type",
                    "source",
                    "detail",
                    "Sns",
                    "Message",
                    "MessageId",
                    "Event",
                ]
            )
            | st.text(max_size=4),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_arbitrary_json_never_raises_anything_but_event_error(payload: Any) -> None:
    for call in (
        lambda: normalise(payload),
        lambda: normalise_sqs_record(payload),
        lambda: normalise_cloudevent(payload, payload),
        lambda: normalise_background(payload, payload),
        lambda: normalise({"Records": [payload]}),
        lambda: normalise_cloudevent(
            {"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "1"}, payload
        ),
    ):
        with contextlib.suppress(EventError):
            assert_sound(call())


@pytest.mark.parametrize("data", [None, [], 0, "", "{}", b"\xff", b"[]", {"message": None}])
@pytest.mark.parametrize("kind", ["finalized", "metadataUpdated"])
def test_cloudevent_with_hostile_data_is_an_event_error(data: Any, kind: str) -> None:
    attributes = {"type": f"google.cloud.storage.object.v1.{kind}", "id": "1"}
    with pytest.raises(EventError):
        normalise_cloudevent(attributes, data)
