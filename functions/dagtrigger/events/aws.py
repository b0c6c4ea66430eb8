"""AWS events: S3 object events, SQS and SNS messages and EventBridge events, in every envelope.

A Lambda event holds `Records` from S3, SQS or SNS, or is one EventBridge event. An SQS body or an
SNS message may itself carry an S3 notification, an EventBridge event or (SQS only) an SNS
notification; the event that is carried is what counts, so an S3 object event has the same
identity whether it arrives directly, through SQS, through SNS and SQS, or through EventBridge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from dagtrigger.errors import EventError, UnsupportedEventError
from dagtrigger.events.model import BridgeEvent, Event, Message, Normalised, StorageObject
from dagtrigger.events.payload import Fields, format_epoch_millis, json_or_text, quote

SQS_TYPE = "aws:sqs"
SNS_TYPE = "aws:sns"
S3_TEST_EVENT = "s3:TestEvent"
S3_TEST_EVENT_SKIPPED = "S3 test event (sent when notifications are configured)"

# S3 via EventBridge -> the event names S3 notifications use, so both forms share one vocabulary.
_BRIDGE_CREATED_REASONS = {
    "PutObject": "ObjectCreated:Put",
    "POST Object": "ObjectCreated:Post",
    "CopyObject": "ObjectCreated:Copy",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}
_BRIDGE_DELETE_REASONS = {
    "DeleteObject": "ObjectRemoved",
    "Lifecycle Expiration": "LifecycleExpiration",
}
_BRIDGE_DELETION_TYPES = {
    "Permanently Deleted": "Delete",
    "Delete Marker Created": "DeleteMarkerCreated",
}
_BRIDGE_DETAIL_TYPES = {
    "Object Restore Initiated": "ObjectRestore:Post",
    "Object Restore Completed": "ObjectRestore:Completed",
    "Object Restore Expired": "ObjectRestore:Delete",
    "Object Tags Added": "ObjectTagging:Put",
    "Object Tags Deleted": "ObjectTagging:Delete",
    "Object ACL Updated": "ObjectAcl:Put",
    "Object Storage Class Changed": "LifecycleTransition",
    "Object Access Tier Changed": "IntelligentTiering",
}

# Event families that happen at most once per object version: the version alone tells two apart.
# Everything else (tags, ACLs, restores, transitions) can recur for one version.
_ONCE_PER_VERSION = frozenset({"ObjectCreated", "ObjectRemoved", "LifecycleExpiration"})


def normalise_records(event: Mapping[str, Any]) -> Normalised:
    """Normalise a Lambda event with `Records` from S3, SQS or SNS (several, possibly mixed)."""
    records = Fields.of(event, "Lambda event").items("Records")
    result = Normalised()
    for number, item in enumerate(records, start=1):
        record = Fields.of(item, f"Lambda record {number}")
        source = record.optional_text("eventSource", "EventSource")
        read = _RECORD_READERS.get(source or "")
        if read is None:
            shown = quote(source) if source else "no eventSource"
            raise UnsupportedEventError(
                f"Lambda record {number} has {shown}; supported: {', '.join(_RECORD_READERS)}"
            )
        result += read(record.data, number)
    return result


def normalise_sqs_record(record: Mapping[str, Any]) -> Normalised:
    """Normalise one SQS record of a Lambda batch, with whatever its body carries."""
    return _read_sqs_record(record, None)


def normalise_eventbridge(event: Mapping[str, Any], where: str = "EventBridge event") -> Normalised:
    """Normalise an EventBridge event; S3 object events among them become S3 events."""
    bridge = Fields.of(event, where)
    source = bridge.text("source")
    detail_type = bridge.text("detail-type")
    event_id = bridge.text("id")
    event_time = bridge.optional_text("time")
    detail = bridge.fields("detail")
    if source == "aws.s3":
        event_type = _bridge_s3_event_type(detail_type, detail)
        if event_type is not None:
            return Normalised((_build_bridge_s3_event(detail, event_type, event_id, event_time),))
    carried = BridgeEvent(source, detail_type, dict(detail.data), bridge.string_list("resources"))
    normalised = Event(
        provider="eventbridge",
        event_id=event_id,
        event_type=detail_type,
        event_time=event_time,
        identity=("eventbridge", event_id),
        bridge=carried,
    )
    return Normalised((normalised,))


def is_s3_test_event(payload: Mapping[str, Any]) -> bool:
    """True for the message S3 sends once when a notification destination is configured."""
    return payload.get("Event") == S3_TEST_EVENT


def s3_identity(
    event_type: str,
    bucket: str,
    key: str,
    *,
    version_id: str | None,
    sequencer: str | None,
    request_id: str | None,
    event_time: str | None,
    where: str,
) -> tuple[str, ...]:
    """What makes an S3 object event distinct, the same for a notification and EventBridge.

    Creations differ only in the API used (Put, Copy...), so they share the kind ObjectCreated;
    other event names stay whole because, for one version, a delete marker can be created and
    later deleted. The literal version id "null" (unversioned or suspended buckets) is shared by
    every overwrite, so the sequencer is used instead. Events that can recur for one version are
    told apart by the S3 request id, else the event time.
    """
    family = event_type.partition(":")[0]
    kind = family if family == "ObjectCreated" else event_type
    version = version_id if version_id not in (None, "null") else sequencer
    if family in _ONCE_PER_VERSION and version:
        return ("s3", kind, bucket, key, version)
    if request_id:
        return ("s3", kind, bucket, key, f"request:{request_id}")
    if event_time:
        return ("s3", kind, bucket, key, f"time:{event_time}")
    raise EventError(f"{where} has no version id, sequencer, request id or time to identify it")


def _read_s3_record(record: Mapping[str, Any], number: int, via: str = "") -> Normalised:
    fields = Fields(record, f"S3 record {number}{via}")
    s3 = fields.fields("s3")
    bucket = s3.fields("bucket").text("name")
    obj = s3.fields("object")
    key = unquote_plus(obj.text("key"))  # notifications URL-encode keys: "+" is a space
    event_type = fields.text("eventName").removeprefix("s3:")  # emulators add the prefix
    version_id = obj.optional_text("versionId")
    sequencer = obj.optional_text("sequencer")
    request_id = fields.optional_fields("responseElements").optional_text("x-amz-request-id")
    event_time = fields.optional_text("eventTime")
    event_id = sequencer or request_id or event_time
    if event_id is None:
        raise fields.missing("s3.object.sequencer")
    event = _s3_object_event(
        obj,
        bucket=bucket,
        key=key,
        etag_field="eTag",
        version_id=version_id,
        request_id=request_id,
        event_type=event_type,
        event_id=event_id,
        event_time=event_time,
        where=fields.where,
    )
    return Normalised((event,))


def _read_s3_notification(notification: Mapping[str, Any], via: str) -> Normalised:
    records = Fields.of(notification, f"S3 notification{via}").items("Records")
    result = Normalised()
    for number, record in enumerate(records, start=1):
        if not isinstance(record, Mapping):
            raise EventError(f"S3 record {number}{via} is not a JSON object")
        result += _read_s3_record(record, number, via)
    return result


def _read_sqs_record(record: Mapping[str, Any], number: int | None) -> Normalised:
    fields = Fields.of(record, "SQS record" if number is None else f"SQS record {number}")
    message_id = fields.text("messageId")
    fields = Fields(fields.data, f"SQS message {quote(message_id)}")
    body = fields.text("body")
    system = fields.optional_fields("attributes")
    sent = system.whole_number("SentTimestamp")
    sent_where = f"{fields.where} field {system.name('SentTimestamp')}"
    sent_time = None if sent is None else format_epoch_millis(sent, sent_where)
    parsed = json_or_text(body)
    carried = _read_carried(parsed, f" in {fields.where}", allow_sns=True)
    if carried is not None:
        return carried
    attributes = _read_attributes(fields, "messageAttributes", ("stringValue", "binaryValue"))
    event = Event(
        provider="sqs",
        event_id=message_id,
        event_type=SQS_TYPE,
        event_time=sent_time,
        identity=("sqs", message_id),
        message=Message(message_id, parsed, attributes),
    )
    return Normalised((event,))


def _read_sns_record(record: Mapping[str, Any], number: int) -> Normalised:
    return _read_sns_message(Fields(record, f"SNS record {number}").fields("Sns"))


def _read_sns_message(sns: Fields, via: str = "") -> Normalised:
    message_id = sns.text("MessageId")
    fields = Fields(sns.data, f"SNS message {quote(message_id)}{via}", sns.path)
    parsed = json_or_text(fields.text("Message"))
    # SNS may wrap what SQS carries, never the other way round: look inside only once.
    carried = _read_carried(parsed, f" in {fields.where}", allow_sns=False)
    if carried is not None:
        return carried
    attributes = _read_attributes(fields, "MessageAttributes", ("Value",))
    event = Event(
        provider="sns",
        event_id=message_id,
        event_type=SNS_TYPE,
        event_time=fields.optional_text("Timestamp"),
        identity=("sns", message_id),
        message=Message(message_id, parsed, attributes),
    )
    return Normalised((event,))


def _read_carried(parsed: Any, via: str, *, allow_sns: bool) -> Normalised | None:
    """The events a message body carries, or None when it is a plain message."""
    if not isinstance(parsed, Mapping):
        return None
    if is_s3_test_event(parsed):
        return Normalised(skipped=(S3_TEST_EVENT_SKIPPED,))
    if _is_s3_notification(parsed):
        return _read_s3_notification(parsed, via)
    if "detail-type" in parsed and "source" in parsed:
        return normalise_eventbridge(parsed, f"EventBridge event{via}")
    if allow_sns and _is_sns_notification(parsed):
        return _read_sns_message(Fields(parsed, f"SNS notification{via}"), via)
    return None


def _is_s3_notification(parsed: Mapping[str, Any]) -> bool:
    records = parsed.get("Records")
    return isinstance(records, list) and any(
        isinstance(record, Mapping) and record.get("eventSource") == "aws:s3" for record in records
    )


def _is_sns_notification(parsed: Mapping[str, Any]) -> bool:
    return parsed.get("Type") == "Notification" and "TopicArn" in parsed and "Message" in parsed


def _read_attributes(fields: Fields, key: str, value_keys: tuple[str, ...]) -> dict[str, str]:
    """SQS {name: {stringValue}} and SNS {name: {Value}} message attributes as {name: value}."""
    attributes = fields.optional_fields(key)
    result: dict[str, str] = {}
    for name in attributes.data:
        if not isinstance(name, str):
            raise EventError(f"{fields.where} field {attributes.path} has a key that is not text")
        result[name] = attributes.fields(name).text(*value_keys)
    return result


def _bridge_s3_event_type(detail_type: str, detail: Fields) -> str | None:
    if detail_type == "Object Created":
        return _BRIDGE_CREATED_REASONS.get(detail.optional_text("reason") or "", "ObjectCreated:*")
    if detail_type == "Object Deleted":
        family = _BRIDGE_DELETE_REASONS.get(detail.optional_text("reason") or "", "ObjectRemoved")
        deletion = _BRIDGE_DELETION_TYPES.get(detail.optional_text("deletion-type") or "", "*")
        return f"{family}:{deletion}"
    return _BRIDGE_DETAIL_TYPES.get(detail_type)


def _build_bridge_s3_event(
    detail: Fields, event_type: str, event_id: str, event_time: str | None
) -> Event:
    bucket = detail.fields("bucket").text("name")
    obj = detail.fields("object")
    key = obj.text("key")  # EventBridge sends the key as it is, not URL-encoded
    return _s3_object_event(
        obj,
        bucket=bucket,
        key=key,
        etag_field="etag",
        version_id=obj.optional_text("version-id"),
        request_id=detail.optional_text("request-id"),
        event_type=event_type,
        event_id=event_id,
        event_time=event_time,
        where=detail.where,
    )


def _s3_object_event(
    obj: Fields,
    *,
    bucket: str,
    key: str,
    etag_field: str,
    version_id: str | None,
    request_id: str | None,
    event_type: str,
    event_id: str,
    event_time: str | None,
    where: str,
) -> Event:
    """The S3 object event both envelopes describe; only their field names differ."""
    sequencer = obj.optional_text("sequencer")
    storage_object = StorageObject(
        scheme="s3",
        bucket=bucket,
        name=key,
        size=obj.whole_number("size"),
        etag=obj.optional_text(etag_field),
        version=version_id or sequencer,
    )
    identity = s3_identity(
        event_type,
        bucket,
        key,
        version_id=version_id,
        sequencer=sequencer,
        request_id=request_id,
        event_time=event_time,
        where=where,
    )
    return Event("s3", event_id, event_type, event_time, identity, object=storage_object)


_RECORD_READERS: dict[str, Callable[[Mapping[str, Any], int], Normalised]] = {
    "aws:s3": _read_s3_record,
    "aws:sqs": _read_sqs_record,
    "aws:sns": _read_sns_record,
}
