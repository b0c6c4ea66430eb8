"""The normalised event every source is turned into, and the default DAG run conf built from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROVIDERS = ("gcs", "pubsub", "s3", "sqs", "sns", "eventbridge")


@dataclass(frozen=True, slots=True)
class StorageObject:
    """An object in Cloud Storage or S3, with its name already decoded."""

    scheme: str  # "gs" or "s3"
    bucket: str
    name: str
    size: int | None = None
    content_type: str | None = None
    etag: str | None = None
    version: str | None = None  # GCS generation; S3 versionId, else the sequencer
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.name}"


@dataclass(frozen=True, slots=True)
class Message:
    """A Pub/Sub, SQS or SNS message. `data` is parsed JSON when it parses, else text."""

    message_id: str
    data: Any
    attributes: Mapping[str, str] = field(default_factory=dict)
    data_encoding: str | None = None  # "base64" when the bytes were not UTF-8 text


@dataclass(frozen=True, slots=True)
class BridgeEvent:
    """The EventBridge envelope of any event that is not an S3 object event."""

    source: str
    detail_type: str
    detail: Mapping[str, Any]
    resources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, whatever cloud and envelope it came in.

    `identity` holds exactly what makes this event distinct from every other one (for a GCS object
    event: kind, bucket, name, generation); the DAG run id is derived from it, so the same event
    delivered twice, or through two envelopes, maps to the same run.
    """

    provider: str
    event_id: str
    event_type: str
    event_time: str | None
    identity: tuple[str, ...]
    object: StorageObject | None = None
    message: Message | None = None
    bridge: BridgeEvent | None = None

    @property
    def label(self) -> str:
        """A short human-readable name for logs and run ids."""
        if self.object is not None:
            return f"{self.object.bucket}/{self.object.name}"
        if self.message is not None:
            return self.message.message_id
        return self.event_id

    def default_conf(self) -> dict[str, Any]:
        """The documented, flat conf contract (see README, "The conf a DAG receives")."""
        conf: dict[str, Any] = {
            "provider": self.provider,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "event_time": self.event_time,
        }
        if self.object is not None:
            obj = self.object
            conf.update(
                bucket=obj.bucket,
                name=obj.name,
                uri=obj.uri,
                size=obj.size,
                content_type=obj.content_type,
                etag=obj.etag,
                version=obj.version,
                metadata=dict(obj.metadata),
            )
        if self.message is not None:
            msg = self.message
            conf.update(message_id=msg.message_id, data=msg.data, attributes=dict(msg.attributes))
            if msg.data_encoding is not None:
                conf["data_encoding"] = msg.data_encoding
        if self.bridge is not None:
            bridge = self.bridge
            conf.update(
                source=bridge.source,
                detail_type=bridge.detail_type,
                detail=dict(bridge.detail),
                resources=list(bridge.resources),
            )
        return conf


@dataclass(frozen=True, slots=True)
class Normalised:
    """What a payload held: the events to act on, and why anything else in it was skipped."""

    events: tuple[Event, ...] = ()
    skipped: tuple[str, ...] = ()

    def __add__(self, other: Normalised) -> Normalised:
        return Normalised(self.events + other.events, self.skipped + other.skipped)
