"""Strict readers for JSON wire shapes: every failure is one EventError naming the event and field.

Payloads arrive from outside and may be wrong in any way (a list where an object belongs, a number
where a string belongs, invalid base64, JSON nested a million levels deep). These helpers turn
each such case into an `EventError` with a one-line message, so that no KeyError, TypeError,
ValueError, binascii.Error or UnicodeDecodeError ever leaves the normalisers.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dagtrigger.errors import EventError

# bool before int: True is an int to isinstance.
_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),
    ((int, float), "a number"),
    (str, "a string"),
    ((list, tuple), "a list"),
    (Mapping, "a JSON object"),
    ((bytes, bytearray), "bytes"),
)

_WHOLE_NUMBER = re.compile(r"[0-9]{1,20}")  # int64 fits in 19 digits; stay clear of int() limits
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_QUOTE_LIMIT = 80
# A key shown bare in a field path; any other (a newline, a quote, a very long name) is quoted.
_PLAIN_KEY = re.compile(r"[\w.:@$-]{1,60}", re.ASCII)


def kind_of(value: Any) -> str:
    """The JSON kind of a value, for messages ("a list", "null", "a string")."""
    for kind, name in _KINDS:
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


def quote(text: str) -> str:
    """repr() of a string, cut short: safe to put in a one-line message."""
    shown = repr(text)
    return shown if len(shown) <= _QUOTE_LIMIT else shown[: _QUOTE_LIMIT - 4] + "...'"


def describe(value: Any) -> str:
    """A string value quoted, anything else by its kind (never repr() of a deep structure)."""
    return quote(value) if isinstance(value, str) else kind_of(value)


def list_keys(mapping: Mapping[Any, Any], limit: int = 8) -> str:
    """The keys of a payload, sorted and shortened, for an 'unsupported' message."""
    names = sorted(describe(key) for key in mapping)
    shown = ", ".join(names[:limit]) or "none"
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} does not fit a float")
    return number


def load_json(text: str | bytes | bytearray) -> Any:
    """json.loads that refuses NaN and Infinity (a DAG run conf must be strict JSON).

    Raises ValueError for anything that is not JSON, including text nested too deeply to parse.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_parse_finite_float)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    except TypeError as exc:  # json.loads says TypeError for bytes in an unknown encoding
        raise ValueError(str(exc)) from exc


def json_or_text(text: str) -> Any:
    """The parsed JSON when `text` is JSON, else `text` itself."""
    try:
        return load_json(text)
    except ValueError:
        return text


def read_object(value: Any, where: str) -> Fields:
    """A JSON object given as a mapping, JSON text or UTF-8 JSON bytes."""
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError(f"{where} is not UTF-8 text") from exc
    if isinstance(value, str):
        try:
            value = load_json(value)
        except ValueError as exc:
            raise EventError(f"{where} is not JSON") from exc
    if value is None:
        raise EventError(f"{where} is missing")
    return Fields.of(value, where)


def decode_base64(text: str, where: str) -> bytes:
    """Standard base64 (what Pub/Sub and CloudEvents' data_base64 use), strictly checked."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventError(f"{where} is not valid base64") from exc


def decode_message_data(encoded: str, where: str) -> tuple[Any, str | None]:
    """Base64 message data as (JSON or text, None), or (the base64 itself, "base64") for binary.

    Bytes that are not UTF-8 cannot go into a JSON conf, so they stay encoded and say so.
    """
    raw = decode_base64(encoded, where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return encoded, "base64"
    return json_or_text(text), None


def format_epoch_millis(millis: int, where: str) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds: 2024-06-01T06:15:02.437Z."""
    try:
        moment = _EPOCH + timedelta(milliseconds=millis)
    except OverflowError as exc:
        raise EventError(f"{where} ({millis}) is out of range") from exc
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Fields:
    """One JSON object of a payload, read so that every error names the event and the field path.

    `where` names the event ("S3 record 2"), `path` the object's place inside it ("s3.object"):
    a missing key then reads "S3 record 2 has no s3.object.key".
    """

    data: Mapping[Any, Any]
    where: str
    path: str = ""

    @classmethod
    def of(cls, value: Any, where: str) -> Fields:
        """Wrap `value`, which must be a JSON object."""
        if not isinstance(value, Mapping):
            raise EventError(f"{where} is {kind_of(value)}, not a JSON object")
        return cls(value, where)

    def name(self, key: str) -> str:
        """The dotted path of `key` in the event, on one line whatever the key holds."""
        shown = key if _PLAIN_KEY.fullmatch(key) else quote(key)
        return f"{self.path}.{shown}" if self.path else shown

    def missing(self, key: str) -> EventError:
        """The error for a required field that is absent."""
        return EventError(f"{self.where} has no {self.name(key)}")

    def wrong(self, key: str, value: Any, expected: str) -> EventError:
        """The error for a field of the wrong kind."""
        return EventError(
            f"{self.where} field {self.name(key)} is {describe(value)}, not {expected}"
        )

    def get(self, key: str) -> Any:
        """The raw value, or None."""
        return self.data.get(key)

    def optional_text(self, *keys: str) -> str | None:
        """The first of `keys` that holds a non-empty string; None when none is present."""
        for key in keys:
            value = self.data.get(key)
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise self.wrong(key, value, "a string")
            return value
        return None

    def text(self, *keys: str) -> str:
        """A required non-empty string, under the first of `keys` that is present."""
        value = self.optional_text(*keys)
        if value is None:
            raise self.missing(keys[0])
        return value

    def fields(self, key: str) -> Fields:
        """A required nested object."""
        value = self.data.get(key)
        if value is None:
            raise self.missing(key)
        return self._child(key, value)

    def optional_fields(self, key: str) -> Fields:
        """A nested object, or an empty one when it is absent."""
        value = self.data.get(key)
        return self._child(key, {} if value is None else value)

    def _child(self, key: str, value: Any) -> Fields:
        if not isinstance(value, Mapping):
            raise self.wrong(key, value, "a JSON object")
        return Fields(value, self.where, self.name(key))

    def whole_number(self, key: str) -> int | None:
        """A non-negative integer given as a number or as decimal text (GCS int64 fields)."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
            return int(value)
        raise self.wrong(key, value, "a whole number")

    def number_text(self, key: str) -> str | None:
        """An int64 field as canonical decimal text, so "0042" and 42 agree."""
        number = self.whole_number(key)
        return None if number is None else str(number)

    def string_map(self, key: str) -> dict[str, str]:
        """A nested object whose values are all strings (attributes, metadata)."""
        child = self.optional_fields(key)
        result: dict[str, str] = {}
        for name, value in child.data.items():
            if not isinstance(name, str):
                raise EventError(
                    f"{self.where} field {child.path} has a key that is {kind_of(name)}"
                )
            if not isinstance(value, str):
                raise child.wrong(name, value, "a string")
            result[name] = value
        return result

    def string_list(self, key: str) -> tuple[str, ...]:
        """A list of strings; empty when absent."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise self.wrong(key, value, "a list")
        for item in value:
            if not isinstance(item, str):
                raise EventError(
                    f"{self.where} field {self.name(key)} holds {kind_of(item)}, not only strings"
                )
        return tuple(value)

    def items(self, key: str) -> list[Any]:
        """A required non-empty list, items unchecked."""
        value = self.data.get(key)
        if value is None:
            raise self.missing(key)
        if not isinstance(value, list | tuple):
            raise self.wrong(key, value, "a list")
        if not value:
            raise EventError(f"{self.where} field {self.name(key)} is an empty list")
        return list(value)
