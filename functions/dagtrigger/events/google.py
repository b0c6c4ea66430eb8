"""Google Cloud events: Cloud Storage object events and Pub/Sub messages, in every envelope.

Envelopes: CloudEvents (structured, or attributes + data from functions-framework), legacy
background-function events `(data, context)`, and Pub/Sub push bodies. A Pub/Sub message that is
a Cloud Storage notification becomes a Cloud Storage event, with the same identity as the
CloudEvent or background event for the same object change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dagtrigger.errors import EventError, UnsupportedEventError
from dagtrigger.events.model import Event, Message, Normalised, StorageObject
from dagtrigger.events.payload import (
    Fields,
    decode_base64,
    decode_message_data,
    quote,
    read_object,
)

STORAGE_TYPE_PREFIX = "google.cloud.storage.object.v1."
PUBSUB_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"

# CloudEvent type -> kind (the type's last segment, used in the identity).
_STORAGE_KINDS = {
    STORAGE_TYPE_PREFIX + kind: kind
    for kind in ("finalized", "deleted", "archived", "metadataUpdated")
}

# Legacy background-function event types -> CloudEvent types (as functions-framework maps them).
_LEGACY_TYPES = {
    "google.storage.object.finalize": STORAGE_TYPE_PREFIX + "finalized",
    "google.storage.object.delete": STORAGE_TYPE_PREFIX + "deleted",
    "google.storage.object.archive": STORAGE_TYPE_PREFIX + "archived",
    "google.storage.object.metadataUpdate": STORAGE_TYPE_PREFIX + "metadataUpdated",
    "google.pubsub.topic.publish": PUBSUB_TYPE,
    "providers/cloud.pubsub/eventTypes/topic.publish": PUBSUB_TYPE,
}

# Pub/Sub notifications for Cloud Storage: attribute eventType -> kind.
_NOTIFICATION_KINDS = {
    "OBJECT_FINALIZE": "finalized",
    "OBJECT_DELETE": "deleted",
    "OBJECT_ARCHIVE": "archived",
    "OBJECT_METADATA_UPDATE": "metadataUpdated",
}
_NOTIFICATION_MARKERS = ("eventType", "bucketId", "objectId")
_JSON_PAYLOAD = "JSON_API_V1"

# Background events name the object as projects/_/buckets/B/objects/NAME.
_STORAGE_RESOURCE = re.compile(r"projects/[^/]+/buckets/([^/]+)/objects/(.+)", re.DOTALL)


def normalise_cloudevent(attributes: Mapping[str, Any], data: Any) -> Normalised:
    """Normalise a CloudEvent given as its attributes and its data (a dict, JSON text or bytes)."""
    context = Fields.of(attributes, "CloudEvent")
    event_type = context.text("type")
    if event_type not in _STORAGE_KINDS and event_type != PUBSUB_TYPE:
        supported = ", ".join((*_STORAGE_KINDS, PUBSUB_TYPE))
        raise UnsupportedEventError(
            f"CloudEvent type {quote(event_type)} is not supported; supported: {supported}"
        )
    event_id = context.text("id")
    event_time = context.optional_text("time")
    body = read_object(data, f"{event_type} CloudEvent data")
    if event_type == PUBSUB_TYPE:
        return Normalised((build_pubsub_event(body.fields("message"), event_id, event_time),))
    kind = _STORAGE_KINDS[event_type]
    return Normalised((build_storage_event(kind, body, event_id=event_id, event_time=event_time),))


def normalise_structured_cloudevent(event: Mapping[str, Any]) -> Normalised:
    """Normalise a structured-mode CloudEvent: attributes and `data` (or `data_base64`) in one."""
    fields = Fields.of(event, "CloudEvent")
    data = fields.get("data")
    if data is None and fields.get("data_base64") is not None:
        data = decode_base64(fields.text("data_base64"), "CloudEvent data_base64")
    return normalise_cloudevent(event, data)


def normalise_background(data: Any, context: Mapping[str, Any]) -> Normalised:
    """Normalise a legacy background-function event given as `(data, context)`."""
    ctx = Fields.of(context, "background event context")
    legacy_type = ctx.text("event_type", "eventType")
    event_type = _LEGACY_TYPES.get(legacy_type)
    if event_type is None:
        supported = ", ".join(_LEGACY_TYPES)
        raise UnsupportedEventError(
            f"background event type {quote(legacy_type)} is not supported; supported: {supported}"
        )
    event_id = ctx.text("event_id", "eventId")
    timestamp = ctx.optional_text("timestamp")
    body = read_object(data, f"{legacy_type} event data")
    if event_type == PUBSUB_TYPE:
        return Normalised((build_pubsub_event(body, event_id, timestamp),))
    bucket, name = (None, None)
    if body.get("bucket") is None or body.get("name") is None:
        bucket, name = _split_resource(ctx)
    event = build_storage_event(
        _STORAGE_KINDS[event_type],
        body,
        event_id=event_id,
        event_time=timestamp,
        bucket=bucket,
        name=name,
    )
    return Normalised((event,))


def normalise_push(body: Mapping[str, Any]) -> Normalised:
    """Normalise a Pub/Sub push request body: `{"message": {...}, "subscription": "..."}`."""
    envelope = Fields.of(body, "Pub/Sub push body")
    return Normalised((build_pubsub_event(envelope.fields("message"), None, None),))


def build_pubsub_event(
    message: Fields, fallback_id: str | None, fallback_time: str | None
) -> Event:
    """A Pub/Sub message as an Event; a Cloud Storage notification becomes a Cloud Storage event.

    Push bodies carry both camelCase and snake_case keys; background events carry the message id
    and publish time only in their context, hence the fallbacks.
    """
    message_id = message.optional_text("messageId", "message_id") or fallback_id
    if message_id is None:
        raise message.missing("messageId")
    publish_time = message.optional_text("publishTime", "publish_time") or fallback_time
    attributes = message.string_map("attributes")
    encoded = message.optional_text("data")
    if all(marker in attributes for marker in _NOTIFICATION_MARKERS):
        return _build_notification_event(attributes, encoded, message_id, publish_time)
    data, encoding = (None, None)
    if encoded is not None:
        data, encoding = decode_message_data(encoded, "Pub/Sub message data")
    return Event(
        provider="pubsub",
        event_id=message_id,
        event_type=PUBSUB_TYPE,
        event_time=publish_time,
        identity=("pubsub", message_id),
        message=Message(message_id, data, attributes, encoding),
    )


def build_storage_event(
    kind: str,
    resource: Fields,
    *,
    event_id: str,
    event_time: str | None,
    bucket: str | None = None,
    name: str | None = None,
    generation: str | None = None,
) -> Event:
    """A Cloud Storage object event from an object resource; explicit arguments take precedence."""
    bucket = bucket or resource.text("bucket")
    name = name or resource.text("name")
    generation = generation or resource.number_text("generation")
    metageneration = resource.number_text("metageneration")
    storage_object = StorageObject(
        scheme="gs",
        bucket=bucket,
        name=name,
        size=resource.whole_number("size"),
        content_type=resource.optional_text("contentType"),
        etag=resource.optional_text("etag"),
        version=generation,
        metadata=resource.string_map("metadata"),
    )
    return Event(
        provider="gcs",
        event_id=event_id,
        event_type=STORAGE_TYPE_PREFIX + kind,
        event_time=event_time
        or resource.optional_text("updated")
        or resource.optional_text("timeCreated"),
        identity=storage_identity(kind, bucket, name, generation, metageneration, event_id),
        object=storage_object,
    )


def storage_identity(
    kind: str,
    bucket: str,
    name: str,
    generation: str | None,
    metageneration: str | None,
    event_id: str,
) -> tuple[str, ...]:
    """What makes a Cloud Storage event distinct, whatever envelope carried it.

    Each generation is finalized, archived and deleted at most once, but its metadata can change
    many times, so metadata updates also carry the metageneration. Where a value is missing the
    event id stands in: the identity then differs between envelopes, but never collides.
    """
    standin = f"event:{event_id}"
    identity: tuple[str, ...] = ("gcs", kind, bucket, name, generation or standin)
    if kind == "metadataUpdated":
        identity += (metageneration or standin,)
    return identity


def _build_notification_event(
    attributes: Mapping[str, str], encoded: str | None, message_id: str, publish_time: str | None
) -> Event:
    attrs = Fields(attributes, "Cloud Storage notification", "attributes")
    notification_type = attrs.text("eventType")
    kind = _NOTIFICATION_KINDS.get(notification_type)
    if kind is None:
        supported = ", ".join(_NOTIFICATION_KINDS)
        raise UnsupportedEventError(
            f"Cloud Storage notification eventType {quote(notification_type)} is not supported;"
            f" supported: {supported}"
        )
    resource = Fields({}, "Cloud Storage notification payload")
    if attributes.get("payloadFormat") == _JSON_PAYLOAD and encoded is not None:
        raw = decode_base64(encoded, "Pub/Sub message data")
        resource = read_object(raw, "Cloud Storage notification payload")
    return build_storage_event(
        kind,
        resource,
        event_id=message_id,
        # eventTime is when the object changed; publishTime is later, when Pub/Sub got the news.
        event_time=attrs.optional_text("eventTime") or publish_time,
        bucket=attrs.text("bucketId"),
        name=attrs.text("objectId"),
        generation=attrs.number_text("objectGeneration"),
    )


def _split_resource(context: Fields) -> tuple[str, str]:
    """Bucket and object name from a background event's resource (a string, or a dict with name)."""
    resource = context.get("resource")
    if isinstance(resource, Mapping):
        resource = Fields(resource, context.where, context.name("resource")).text("name")
    if not isinstance(resource, str):
        raise EventError(
            "background event data has no bucket and name, and no resource names the object"
        )
    match = _STORAGE_RESOURCE.fullmatch(resource)
    if match is None:
        raise EventError(
            f"{context.where} resource {quote(resource)} does not name a Cloud Storage object"
        )
    return match.group(1), match.group(2)
