"""Every supported cloud event payload, turned into `Normalised` events.

    normalise(payload)                      any shape below, detected from its keys
    normalise_cloudevent(attributes, data)  a CloudEvent (Cloud Functions, Eventarc)
    normalise_background(data, context)     a legacy background-function event
    normalise_sqs_record(record)            one SQS record (for Lambda partial batch responses)

Malformed input raises `EventError`; a well-formed payload of an unknown kind raises
`UnsupportedEventError`. Nothing else escapes, whatever the input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dagtrigger.errors import EventError, UnsupportedEventError
from dagtrigger.events import aws, google
from dagtrigger.events.aws import normalise_sqs_record
from dagtrigger.events.google import normalise_background, normalise_cloudevent
from dagtrigger.events.model import BridgeEvent, Event, Message, Normalised, StorageObject
from dagtrigger.events.payload import kind_of, list_keys, read_object

__all__ = [
    "BridgeEvent",
    "Event",
    "Message",
    "Normalised",
    "StorageObject",
    "normalise",
    "normalise_background",
    "normalise_cloudevent",
    "normalise_sqs_record",
]

_SUPPORTED = (
    "CloudEvents (Cloud Storage, Pub/Sub), background-function events, Pub/Sub push bodies,"
    " Lambda Records (S3, SQS, SNS), EventBridge events, the S3 test event"
)


def _skip_s3_test_event(payload: Mapping[str, Any]) -> Normalised:
    return Normalised(skipped=(aws.S3_TEST_EVENT_SKIPPED,))


def _normalise_nested_background(payload: Mapping[str, Any]) -> Normalised:
    return normalise_background(payload.get("data"), payload["context"])


def _normalise_flat_background(payload: Mapping[str, Any]) -> Normalised:
    return normalise_background(payload.get("data"), payload)


# (recognise, normalise) in order: the first shape whose keys match handles the payload.
_Recognise = Callable[[Mapping[str, Any]], bool]
_Handle = Callable[[Mapping[str, Any]], Normalised]
_SHAPES: tuple[tuple[_Recognise, _Handle], ...] = (
    (lambda p: "specversion" in p and "type" in p, google.normalise_structured_cloudevent),
    (lambda p: "Records" in p, aws.normalise_records),
    (lambda p: "detail-type" in p and "source" in p, aws.normalise_eventbridge),
    (aws.is_s3_test_event, _skip_s3_test_event),
    (lambda p: "message" in p and "subscription" in p, google.normalise_push),
    (lambda p: "context" in p and "data" in p, _normalise_nested_background),
    (lambda p: "eventType" in p and "eventId" in p, _normalise_flat_background),
)


def normalise(payload: Any) -> Normalised:
    """Detect the kind of `payload` (a dict, or JSON text or bytes) and normalise it."""
    if isinstance(payload, str | bytes | bytearray):
        payload = read_object(payload, "event payload").data
    if not isinstance(payload, Mapping):
        raise EventError(f"event payload is {kind_of(payload)}, not a JSON object")
    for recognise, handle in _SHAPES:
        if recognise(payload):
            return handle(payload)
    raise UnsupportedEventError(
        f"event payload with keys {list_keys(payload)} is of no supported kind;"
        f" supported: {_SUPPORTED}"
    )
