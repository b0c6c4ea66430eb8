"""Does a conf fit a DAG's params? The check Airflow makes when it creates the run, made beforehand.

Airflow resolves each param as the conf's value for its key, else the param's default, and
validates it with `jsonschema.validate(value, param.schema, format_checker=FormatChecker())`; a
param with neither a value in the conf nor a default fails. The REST API shows each param as
`{"value": default, "schema": {...}, ...}` (`/dags/{id}/details`, Airflow 2 and 3), where a
missing default reads as null.

This is a small validator for the JSON Schema keywords DAG params use, not a full one: a keyword
or format it does not know is reported as not checked, never passed silently. No dependency: the
core needs nothing beyond the standard library.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

# Keywords that describe rather than constrain (JSON Schema's, and Airflow's UI extensions).
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "description_md",
        "default",
        "examples",
        "readOnly",
        "writeOnly",
        "deprecated",
        "section",
        "values_display",
        "custom_html_form",
        "format_display",
    }
)
_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
_RFC3339_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_RFC3339_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class Findings:
    problems: tuple[str, ...] = ()  # why Airflow would refuse the value
    unchecked: tuple[str, ...] = ()  # what this validator could not judge

    def __add__(self, other: Findings) -> Findings:
        return Findings(self.problems + other.problems, self.unchecked + other.unchecked)


@dataclass(frozen=True)
class ParamsVerdict:
    checked: tuple[str, ...] = ()  # the params whose schema was applied
    problems: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()


def check_conf(
    params: Mapping[str, Any], conf: Mapping[str, Any], *, lenient_date_time: bool = False
) -> ParamsVerdict:
    """Validate `conf` against the params as the REST API shows them.

    `lenient_date_time`: Airflow 2 accepts an ISO 8601 date-time that is not RFC 3339 (with a
    deprecation warning); Airflow 3 does not.
    """
    checked: list[str] = []
    findings = Findings()
    for name, param in params.items():
        schema = param.get("schema") if isinstance(param, Mapping) else None
        if not isinstance(schema, Mapping | bool):
            findings += Findings(unchecked=(f"{name}: the API does not show its schema",))
            continue
        if name in conf:
            value = conf[name]
        else:
            value = param.get("value") if isinstance(param, Mapping) else None
            if value is None and validate(None, schema).problems:
                findings += Findings(
                    problems=(f"{name}: the conf has no {name!r} and the param has no default",)
                )
                checked.append(name)
                continue
        findings += validate(value, schema, name, lenient_date_time=lenient_date_time)
        checked.append(name)
    return ParamsVerdict(tuple(checked), findings.problems, findings.unchecked)


def validate(
    value: Any, schema: Any, where: str = "value", *, lenient_date_time: bool = False
) -> Findings:
    """The problems JSON Schema finds with `value`, and the keywords it could not apply."""
    return _Validator(lenient_date_time).run(value, schema, where)


class _Validator:
    def __init__(self, lenient_date_time: bool) -> None:
        self.lenient_date_time = lenient_date_time

    def run(self, value: Any, schema: Any, where: str) -> Findings:
        if schema is True or schema == {}:
            return Findings()
        if schema is False:
            return Findings(problems=(f"{where}: no value is allowed",))
        if not isinstance(schema, Mapping):
            return Findings(unchecked=(f"{where}: the schema is not an object",))
        types = schema.get("type")
        if types is not None:
            names = [types] if isinstance(types, str) else list(types)
            if not any(_TYPES.get(t, lambda _v: True)(value) for t in names):
                expected = " or ".join(str(t) for t in names)
                return Findings(problems=(f"{where}: {_show(value)} is not of type {expected}",))
        findings = Findings()
        for keyword, argument in schema.items():
            if keyword == "type" or keyword in _ANNOTATIONS:
                continue
            check = _KEYWORDS.get(keyword)
            if check is None:
                findings += Findings(unchecked=(f"{where}: keyword {keyword!r} not checked",))
                continue
            findings += check(self, keyword, value, argument, schema, where)
        return findings

    # ---- keywords: each (keyword, value, argument, schema, where) -> Findings ----

    def enum(self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str) -> Findings:
        if isinstance(argument, list) and not any(_json_equal(value, a) for a in argument):
            choices = ", ".join(_show(a) for a in argument)
            return Findings(problems=(f"{where}: {_show(value)} is not one of {choices}",))
        return Findings()

    def const(self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str) -> Findings:
        if not _json_equal(value, argument):
            return Findings(problems=(f"{where}: {_show(value)} is not {_show(argument)}",))
        return Findings()

    def pattern(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        if not isinstance(value, str):
            return Findings()
        try:
            matched = re.search(str(argument), value)
        except re.error:
            return Findings(unchecked=(f"{where}: pattern {argument!r} is not a Python regex",))
        if matched is None:
            return Findings(problems=(f"{where}: {_show(value)} does not match {argument}",))
        return Findings()

    def min_length(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        if isinstance(value, str) and len(value) < argument:
            return Findings(problems=(f"{where}: {_show(value)} is shorter than {argument}",))
        return Findings()

    def max_length(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        if isinstance(value, str) and len(value) > argument:
            return Findings(problems=(f"{where}: {_show(value)} is longer than {argument}",))
        return Findings()

    def format(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        if not isinstance(value, str):
            return Findings()
        checker = _FORMATS.get(str(argument))
        if checker is None:
            return Findings(unchecked=(f"{where}: format {argument!r} not checked",))
        if checker(value) or (
            argument == "date-time" and self.lenient_date_time and _is_iso_date_time(value)
        ):
            return Findings()
        return Findings(problems=(f"{where}: {_show(value)} is not a valid {argument}",))

    def bound(self, keyword: str, value: Any, argument: Any, schema: Any, where: str) -> Findings:
        if not _TYPES["number"](value) or not _TYPES["number"](argument):
            return Findings()  # a draft 4 boolean exclusiveMinimum/Maximum is read with its bound
        exclusive = (
            keyword.startswith("exclusive")
            or schema.get("exclusiveMinimum" if keyword == "minimum" else "exclusiveMaximum")
            is True
        )
        low = keyword in ("minimum", "exclusiveMinimum")
        if low and (value <= argument if exclusive else value < argument):
            words = "not greater than" if exclusive else "less than"
        elif not low and (value >= argument if exclusive else value > argument):
            words = "not less than" if exclusive else "greater than"
        else:
            return Findings()
        return Findings(problems=(f"{where}: {_show(value)} is {words} {argument}",))

    def multiple_of(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        if _TYPES["number"](value) and _TYPES["number"](argument) and argument > 0:
            quotient = value / argument
            if not math.isclose(quotient, round(quotient), rel_tol=0, abs_tol=1e-9):
                return Findings(
                    problems=(f"{where}: {_show(value)} is not a multiple of {argument}",)
                )
        return Findings()

    def items(self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str) -> Findings:
        if not isinstance(value, list):
            return Findings()
        findings = Findings()
        for index, item in enumerate(value):
            item_schema = argument
            if isinstance(argument, list):  # draft 4 tuple form
                if index >= len(argument):
                    break
                item_schema = argument[index]
            findings += self.run(item, item_schema, f"{where}[{index}]")
        return findings

    def prefix_items(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        if not isinstance(value, list) or not isinstance(argument, list):
            return Findings()
        findings = Findings()
        for index, (item, item_schema) in enumerate(zip(value, argument, strict=False)):
            findings += self.run(item, item_schema, f"{where}[{index}]")
        return findings

    def count(self, keyword: str, value: Any, argument: Any, _schema: Any, where: str) -> Findings:
        kind = "items" if keyword.endswith("Items") else "keys"
        if not isinstance(value, list if kind == "items" else dict) or not isinstance(
            argument, int
        ):
            return Findings()
        if keyword.startswith("min") and len(value) < argument:
            return Findings(problems=(f"{where}: has {len(value)} {kind}, fewer than {argument}",))
        if keyword.startswith("max") and len(value) > argument:
            return Findings(problems=(f"{where}: has {len(value)} {kind}, more than {argument}",))
        return Findings()

    def unique_items(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        if argument is True and isinstance(value, list):
            for index, item in enumerate(value):
                if any(_json_equal(item, other) for other in value[:index]):
                    return Findings(problems=(f"{where}: {_show(item)} appears twice",))
        return Findings()

    def properties(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        findings = Findings()
        if isinstance(value, dict) and isinstance(argument, Mapping):
            for key, sub_schema in argument.items():
                if key in value:
                    findings += self.run(value[key], sub_schema, f"{where}.{key}")
        return findings

    def pattern_properties(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        findings = Findings()
        if isinstance(value, dict) and isinstance(argument, Mapping):
            for pattern, sub_schema in argument.items():
                for key in value:
                    if re.search(pattern, key):
                        findings += self.run(value[key], sub_schema, f"{where}.{key}")
        return findings

    def required(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        if isinstance(value, dict) and isinstance(argument, list):
            missing = [key for key in argument if key not in value]
            if missing:
                names = ", ".join(repr(k) for k in missing)
                return Findings(problems=(f"{where}: lacks required key {names}",))
        return Findings()

    def additional_properties(
        self, _keyword: str, value: Any, argument: Any, schema: Any, where: str
    ) -> Findings:
        if not isinstance(value, dict):
            return Findings()
        known = set(schema.get("properties") or {})
        patterns = list(schema.get("patternProperties") or {})
        extra = [k for k in value if k not in known and not any(re.search(p, k) for p in patterns)]
        if argument is False and extra:
            names = ", ".join(repr(k) for k in extra)
            return Findings(problems=(f"{where}: has keys the schema does not allow: {names}",))
        findings = Findings()
        if isinstance(argument, Mapping):
            for key in extra:
                findings += self.run(value[key], argument, f"{where}.{key}")
        return findings

    def all_of(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        findings = Findings()
        for sub_schema in argument if isinstance(argument, list) else []:
            findings += self.run(value, sub_schema, where)
        return findings

    def any_of(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        return self._alternatives(value, argument, where, exactly_one=False)

    def one_of(
        self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str
    ) -> Findings:
        return self._alternatives(value, argument, where, exactly_one=True)

    def not_(self, _keyword: str, value: Any, argument: Any, _schema: Any, where: str) -> Findings:
        inner = self.run(value, argument, where)
        if inner.unchecked:
            return Findings(unchecked=inner.unchecked)
        if not inner.problems:
            return Findings(problems=(f"{where}: {_show(value)} matches a schema it must not",))
        return Findings()

    def _alternatives(
        self, value: Any, argument: Any, where: str, *, exactly_one: bool
    ) -> Findings:
        outcomes = [self.run(value, s, where) for s in argument if isinstance(argument, list)]
        unchecked = tuple(u for o in outcomes for u in o.unchecked)
        passing = sum(1 for o in outcomes if not o.problems)
        if exactly_one and passing > 1:
            return Findings(
                problems=(f"{where}: {_show(value)} matches more than one of oneOf",),
                unchecked=unchecked,
            )
        if passing == 0:
            reasons = "; ".join(p for o in outcomes for p in o.problems)
            return Findings(
                problems=(f"{where}: {_show(value)} matches no alternative ({reasons})",),
                unchecked=unchecked,
            )
        return Findings(unchecked=unchecked)


_KEYWORDS: Mapping[str, Callable[[_Validator, str, Any, Any, Any, str], Findings]] = {
    "enum": _Validator.enum,
    "const": _Validator.const,
    "pattern": _Validator.pattern,
    "minLength": _Validator.min_length,
    "maxLength": _Validator.max_length,
    "format": _Validator.format,
    "minimum": _Validator.bound,
    "maximum": _Validator.bound,
    "exclusiveMinimum": _Validator.bound,
    "exclusiveMaximum": _Validator.bound,
    "multipleOf": _Validator.multiple_of,
    "items": _Validator.items,
    "prefixItems": _Validator.prefix_items,
    "minItems": _Validator.count,
    "maxItems": _Validator.count,
    "minProperties": _Validator.count,
    "maxProperties": _Validator.count,
    "uniqueItems": _Validator.unique_items,
    "properties": _Validator.properties,
    "patternProperties": _Validator.pattern_properties,
    "required": _Validator.required,
    "additionalProperties": _Validator.additional_properties,
    "allOf": _Validator.all_of,
    "anyOf": _Validator.any_of,
    "oneOf": _Validator.one_of,
    "not": _Validator.not_,
}


def _is_date(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_date_time(text: str) -> bool:
    if not _RFC3339_DATE_TIME.match(text):
        return False
    try:
        datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_iso_date_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_ip(version: int) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            return ipaddress.ip_address(text).version == version
        except ValueError:
            return False

    return check


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36 and all(text[i] == "-" for i in (8, 13, 18, 23))


def _is_regex(text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return True


_FORMATS: Mapping[str, Callable[[str], bool]] = {
    "date": _is_date,
    "date-time": _is_date_time,
    "time": lambda text: bool(_RFC3339_TIME.match(text)),
    "email": lambda text: "@" in text,
    "idn-email": lambda text: "@" in text,
    "ipv4": _is_ip(4),
    "ipv6": _is_ip(6),
    "uuid": _is_uuid,
    "regex": _is_regex,
}


def _json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON sees it: true is not 1, 1 is 1.0."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            _json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    return bool(left == right)


def _show(value: Any, limit: int = 60) -> str:
    text = (
        repr(value)
        if not isinstance(value, bool | type(None))
        else str(value).lower().replace("none", "null")
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"
