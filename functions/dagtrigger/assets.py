"""The asset (dataset) events a route records, beside or instead of a DAG run.

A route with "asset" records an event for that asset in Airflow (an asset on Airflow 3, a
dataset on Airflow 2.9 to 2.11), so that the DAGs scheduled on it run: Airflow's own data-aware
scheduling. Its "extra" defaults to the event's default conf and, like "partition_key", may be
templated from the event's fields and the regex's groups.

Asset events take no id from the client, so the event's identity travels in the extra
(`IDENTITY_KEY`): a redelivery finds the event it recorded before and records no second one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from dagtrigger.errors import ConfigurationError
from dagtrigger.events.model import Event
from dagtrigger.templates import (
    ObjectNode,
    Template,
    TemplateSyntaxError,
    compile_conf,
    compile_text,
    json_kind,
)

IDENTITY_KEY = "dagtrigger_event"  # in an asset event's extra: the event it was recorded for
ASSET_RULE_KEYS = ("asset", "extra", "replace_extra", "partition_key")
MAX_ASSET_REF_LENGTH = 1500  # Airflow's limit on an asset's URI and name
MAX_PARTITION_KEY_LENGTH = 250  # Airflow 3.2's ID_LEN, the partition_key column


@dataclass(frozen=True, slots=True)
class AssetRule:
    """The asset event part of a compiled route."""

    asset: str  # a URI or a name, as the route wrote it
    extra: ObjectNode | None = None  # None: the event's default conf, as it is
    replace_extra: bool = False
    partition_key: Template | None = None

    def plan(self, event: Event, fields: Mapping[str, Any], route: str) -> PlannedAssetEvent:
        """The asset event for a matching event; MissingValueError when a template needs a value
        the event lacks (the caller names the route)."""
        default = event.default_conf()
        extra: dict[str, Any] = {} if self.replace_extra else default
        if self.extra is not None:
            extra = {**extra, **self.extra.render(fields)}
        partition_key = None
        if self.partition_key is not None:
            partition_key = _text(self.partition_key.render(fields))
        return PlannedAssetEvent(self.asset, extra, partition_key, route, event)


@dataclass(frozen=True, slots=True)
class PlannedAssetEvent:
    """One asset event to record for one event; `key` is the event's identity."""

    asset: str
    extra: dict[str, Any]
    partition_key: str | None
    route: str
    event: Event
    key: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "partition_key": self.partition_key,
            "extra": self.extra,
        }


RuleError = Callable[..., ConfigurationError]  # _Rule.error: (problem, *, fix) -> error


def compile_asset_rule(
    raw: Mapping[str, Any], fields: Collection[str], error: RuleError
) -> AssetRule | None:
    """The asset part of a parsed rule, or None when it records no asset event."""
    if "asset" not in raw:
        stray = next((key for key in ASSET_RULE_KEYS if key in raw), None)
        if stray is not None:
            raise error(f'"{stray}" is set without "asset"', fix='add "asset", or remove it')
        return None
    asset = raw["asset"]
    if not isinstance(asset, str) or not asset.strip() or len(asset) > MAX_ASSET_REF_LENGTH:
        raise error(
            f'"asset" must be an asset\'s URI or name, not {_describe(asset)}',
            fix='e.g. "asset": "s3://acme-landing/sales" (as the DAG declares it)',
        )
    replace_extra = raw.get("replace_extra", False)
    if not isinstance(replace_extra, bool):
        raise error(
            f'"replace_extra" must be true or false, not {json_kind(replace_extra)}',
            fix="write true or false, without quotes",
        )
    return AssetRule(
        asset=asset,
        extra=_compile_extra(raw.get("extra"), fields, error),
        replace_extra=replace_extra,
        partition_key=_compile_partition_key(raw.get("partition_key"), fields, error),
    )


def _compile_extra(extra: Any, fields: Collection[str], error: RuleError) -> ObjectNode | None:
    if extra is None:
        return None
    if not isinstance(extra, Mapping):
        raise error(
            f'"extra" must be an object, not {json_kind(extra)}',
            fix='write it as {"name": value, ...}, e.g. {"day": "{day}"}',
        )
    try:
        return compile_conf(extra, fields=fields, path="extra")
    except TemplateSyntaxError as exc:
        raise error(exc.problem, fix=exc.fix) from exc


def _compile_partition_key(key: Any, fields: Collection[str], error: RuleError) -> Template | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise error(
            f'"partition_key" must be a non-empty string, not {_describe(key)}',
            fix='e.g. "partition_key": "{day}T{hour}" with named groups day and hour in the regex',
        )
    try:
        return compile_text(key, fields=fields, path="partition_key")
    except TemplateSyntaxError as exc:
        raise error(exc.problem, fix=exc.fix) from exc


def _text(value: Any) -> str:
    """A rendered partition key as text: a lone placeholder renders to the field's own value."""
    return value if isinstance(value, str) else "" if value is None else str(value)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"a string of {len(value)} characters"
    return json_kind(value)
