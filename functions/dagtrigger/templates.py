"""Conf templates: JSON values whose strings hold `{field}` or `{field.key}` placeholders.

A template reads event fields; it never runs code. A small tokenizer accepts a field name and
dotted keys and nothing else (no format specs, conversions, indexing or names starting with "_"),
and rendering looks keys up in mappings with `[]`, never `getattr`. Rendered values are inserted
as they are and never parsed again, so event data that contains braces stays literal.

    "{size}"              the native value (an int here), when the string is one placeholder
    "gs://{bucket}/x"     text: each value through str(), None as ""
    "{metadata.owner}"    a key of a mapping field; at most MAX_KEYS keys deep
    "{{literal}}"         "{literal}"
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dagtrigger.errors import ConfigurationError, RouteError

MAX_KEYS = 8

# A placeholder is a field name then dotted keys. Neither may start with "_", which keeps every
# dunder name ({__class__}, {data.__init__}) out; keys may start with a digit or "-" because
# metadata and attribute names do ("x-goog-meta", "2024").
_PLACEHOLDER = re.compile(
    r"(?P<field>[A-Za-z][A-Za-z0-9_]*)(?P<keys>(?:\.[A-Za-z0-9-][A-Za-z0-9_-]*)*)"
)
# "{{" and "}}" first, so that they win over a placeholder starting or ending at the same spot.
_TOKEN = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]|[^{}]+")


class TemplateSyntaxError(ConfigurationError):
    """A conf template is not valid; the message names the value, the problem and the fix."""


class MissingValueError(RouteError):
    """A placeholder has no value in the event being rendered."""

    def __init__(self, placeholder: Placeholder, reason: str) -> None:
        super().__init__(f"{placeholder} has no value ({reason})")
        self.placeholder = placeholder
        self.reason = reason


@dataclass(frozen=True)
class Placeholder:
    """`{field.key.key}`: a field of the event, then keys looked up in mappings."""

    field: str
    keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "{" + ".".join((self.field, *self.keys)) + "}"

    def resolve(self, fields: Mapping[str, Any]) -> Any:
        """The value this placeholder names in `fields`; MissingValueError when there is none."""
        if self.field not in fields:
            raise MissingValueError(self, f'the event has no field "{self.field}"')
        value = fields[self.field]
        path = self.field
        for key in self.keys:
            if not isinstance(value, Mapping):
                raise MissingValueError(self, f'"{path}" is {json_kind(value)}, not an object')
            if key not in value:
                raise MissingValueError(self, f'"{path}" has no key "{key}"')
            value = value[key]
            path = f"{path}.{key}"
        return value


class Node(Protocol):
    """A compiled piece of a conf: renders to a JSON value."""

    def render(self, fields: Mapping[str, Any]) -> Any:
        """The value of this piece for an event whose fields are `fields`."""
        ...


@dataclass(frozen=True)
class Template:
    """A compiled string: literal text and placeholders, in order."""

    parts: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(part for part in self.parts if isinstance(part, Placeholder))

    def render(self, fields: Mapping[str, Any]) -> Any:
        """The native value for a lone placeholder, else the text with every value filled in."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Placeholder):
            return self.parts[0].resolve(fields)
        return "".join(
            _as_text(part.resolve(fields)) if isinstance(part, Placeholder) else part
            for part in self.parts
        )


@dataclass(frozen=True)
class ScalarNode:
    """A number, boolean or null: rendered as it is."""

    value: int | float | bool | None

    def render(self, fields: Mapping[str, Any]) -> Any:
        return self.value


@dataclass(frozen=True)
class ObjectNode:
    """A JSON object: keys stay literal, values are rendered."""

    items: tuple[tuple[str, Node], ...]

    def render(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {key: node.render(fields) for key, node in self.items}


@dataclass(frozen=True)
class ArrayNode:
    """A JSON array: every item is rendered."""

    items: tuple[Node, ...]

    def render(self, fields: Mapping[str, Any]) -> list[Any]:
        return [node.render(fields) for node in self.items]


def parse_template(text: str) -> Template:
    """Compile one string; TemplateSyntaxError saying what is wrong when it is not valid."""
    parts: list[str | Placeholder] = []
    literal = ""
    for token in _TOKEN.finditer(text):
        piece = token.group()
        if piece in ("{{", "}}"):
            literal += piece[0]
        elif piece in ("{", "}"):
            raise _syntax_error(f'unbalanced "{piece}" at character {token.start() + 1}')
        elif piece.startswith("{"):
            if literal:
                parts.append(literal)
                literal = ""
            parts.append(parse_placeholder(piece[1:-1]))
        else:
            literal += piece
    if literal or not parts:
        parts.append(literal)
    return Template(tuple(parts))


def parse_placeholder(inside: str) -> Placeholder:
    """Compile the text between a pair of braces."""
    found = _PLACEHOLDER.fullmatch(inside)
    if found is None:
        raise _syntax_error(_explain_bad_placeholder(inside))
    keys = tuple(found["keys"].split(".")[1:])
    if len(keys) > MAX_KEYS:
        raise TemplateSyntaxError(
            f"{{{inside}}} has {len(keys)} keys", fix=f"use at most {MAX_KEYS}"
        )
    return Placeholder(found["field"], keys)


def compile_conf(
    conf: Mapping[str, Any], *, fields: Collection[str], path: str = "conf"
) -> ObjectNode:
    """Compile a rule's conf object (or an asset event's extra, at `path`), checking every
    placeholder names one of `fields`.

    TemplateSyntaxError names the value by its path ("conf.files[0]") and says what is wrong.
    """
    return _compile_object(conf, path, fields)


def compile_text(text: str, *, fields: Collection[str], path: str) -> Template:
    """Compile one templated string of a rule, e.g. a partition key, as `compile_conf` would."""
    return _compile_string(text, path, fields)


def _compile_value(value: Any, path: str, fields: Collection[str]) -> Node:
    if isinstance(value, str):
        return _compile_string(value, path, fields)
    if isinstance(value, Mapping):
        return _compile_object(value, path, fields)
    if isinstance(value, list):
        items = (_compile_value(item, f"{path}[{i}]", fields) for i, item in enumerate(value))
        return ArrayNode(tuple(items))
    if value is None or isinstance(value, int | float):  # bool is an int
        return ScalarNode(value)
    raise TemplateSyntaxError(
        f"{path}: {json_kind(value)} is not a JSON value",
        fix="use text, numbers, true, false, null, objects and arrays",
    )


def _compile_object(conf: Mapping[str, Any], path: str, fields: Collection[str]) -> ObjectNode:
    items: list[tuple[str, Node]] = []
    for key, value in conf.items():
        if not isinstance(key, str):
            raise TemplateSyntaxError(f"{path}: key {key!r} is not a string", fix="use text keys")
        items.append((key, _compile_value(value, f"{path}.{key}", fields)))
    return ObjectNode(tuple(items))


def _compile_string(text: str, path: str, fields: Collection[str]) -> Template:
    try:
        template = parse_template(text)
    except TemplateSyntaxError as exc:
        raise TemplateSyntaxError(f"{path}: {_quote(text)}: {exc.problem}", fix=exc.fix) from exc
    for placeholder in template.placeholders:
        if placeholder.field not in fields:
            raise TemplateSyntaxError(
                f'{path}: {_quote(text)}: unknown field "{placeholder.field}" in {placeholder}',
                fix=f"use one of the fields {', '.join(sorted(fields))}",
            )
    return template


def _syntax_error(problem: str) -> TemplateSyntaxError:
    return TemplateSyntaxError(
        problem,
        fix='write placeholders as {field} or {field.key.key} (letters, digits, "_" and "-"), '
        'and "{{" or "}}" for a literal brace',
    )


def _explain_bad_placeholder(inside: str) -> str:
    shown = "{" + inside + "}"
    if not inside:
        return "{} is empty"
    if ":" in inside:
        return f"format specs are not supported: {shown}"
    if "!" in inside:
        return f"conversions are not supported: {shown}"
    if "[" in inside or "]" in inside:
        return f"indexing with [] is not supported: {shown}"
    if inside[0].isdigit():
        return f"positional fields are not supported: {shown}"
    if any(name.startswith("_") for name in inside.split(".")):
        return f'names starting with "_" are not allowed: {shown}'
    return f"{shown} is not a placeholder"


def _quote(text: str, limit: int = 80) -> str:
    """The value as shown in messages; long templates are cut so the message stays readable."""
    return f'"{text}"' if len(text) <= limit else f'"{text[:limit]}..."'


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


def json_kind(value: Any) -> str:
    """The JSON name of a value's type with its article ("a string"), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a Python {type(value).__name__}"
