"""Does a conf fit a DAG's params? The check Airflow makes when it creates the run, made beforehand.

Airflow resolves each param as the conf's value for its key, else the param's default, and
validates it with `jsonschema.validate(value, param.schema, format_checker=FormatChecker())`; a
param with neither a value in the conf nor a default fails. The REST API shows each param as
`{"value": default, "schema": {...}, ...}` (`/dags/{id}/details`, Airflow 2 and 3), where a
missing default reads as null.

The same validation runs here, with the `jsonschema` of the CLI's `cli` extra; the functions never
import it. A format `FormatChecker` has no check for passes, but which formats it checks depends
on the packages installed beside it (`date-time` needs rfc3339-validator): one this checker cannot
judge is reported as not checked, since Airflow's may judge it.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

INSTALL_JSONSCHEMA = "pip install 'dagtrigger[cli]'"

# "{value} {phrase} {the keyword's argument}"
_BOUND_PHRASES = {
    "minLength": "is shorter than",
    "maxLength": "is longer than",
    "minimum": "is less than",
    "maximum": "is greater than",
    "exclusiveMinimum": "is not greater than",
    "exclusiveMaximum": "is not less than",
    "multipleOf": "is not a multiple of",
}


@dataclass(frozen=True)
class Findings:
    problems: tuple[str, ...] = ()  # why Airflow would refuse the value
    unchecked: tuple[str, ...] = ()  # what could not be judged here


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
    if importlib.util.find_spec("jsonschema") is None:
        names = f"param{'s' if len(params) != 1 else ''} {', '.join(params)}"
        return ParamsVerdict(
            unchecked=(f"{names}: jsonschema is not installed: {INSTALL_JSONSCHEMA}",)
        )
    checked: list[str] = []
    problems: list[str] = []
    unchecked: list[str] = []
    for name, param in params.items():
        schema = param.get("schema") if isinstance(param, Mapping) else None
        if not isinstance(schema, Mapping | bool):
            unchecked.append(f"{name}: the API does not show its schema")
            continue
        value = conf[name] if name in conf else param.get("value")
        findings = validate(value, schema, name, lenient_date_time=lenient_date_time)
        if findings.problems and name not in conf and value is None:
            findings = Findings(
                problems=(f"{name}: the conf has no {name!r} and the param has no default",)
            )
        checked.append(name)
        problems.extend(findings.problems)
        unchecked.extend(findings.unchecked)
    return ParamsVerdict(tuple(checked), tuple(problems), tuple(unchecked))


def validate(
    value: Any, schema: Any, where: str = "value", *, lenient_date_time: bool = False
) -> Findings:
    """What Airflow's `jsonschema.validate` finds wrong with `value`, and the formats it could not
    judge here."""
    import jsonschema  # type: ignore[import-untyped]
    from referencing.exceptions import Unresolvable

    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except jsonschema.exceptions.SchemaError as error:
        return Findings(
            problems=(f"{where}: the schema is not valid JSON Schema: {error.message}",)
        )
    formats = _NotingFormatChecker(jsonschema.FormatChecker())
    try:
        errors = list(validator_class(schema, format_checker=formats).iter_errors(value))
    except Unresolvable as error:
        return Findings(problems=(f"{where}: the schema's $ref {error.ref!r} cannot be resolved",))
    if errors and lenient_date_time:
        best = jsonschema.exceptions.best_match(errors)  # the one error Airflow sees
        if _is_date_time_schema(best.schema) and _is_iso_8601_date_time(value):
            errors = []
    problems = dict.fromkeys(_problem(error, where) for error in errors)
    unchecked = dict.fromkeys(f"{where}: format {name!r} not checked" for name in formats.unknown)
    return Findings(tuple(problems), tuple(unchecked))


class _NotingFormatChecker:
    """A `jsonschema.FormatChecker` that notes the formats it has no check for."""

    def __init__(self, checker: Any) -> None:
        self.checker = checker
        self.unknown: list[str] = []

    def check(self, instance: Any, format: str) -> None:
        if isinstance(instance, str) and format not in self.checker.checkers:
            self.unknown.append(format)
        self.checker.check(instance, format)


def _problem(error: Any, name: str) -> str:
    return f"{_where(name, error.absolute_path)}: {_wording(error, name)}"


def _where(name: str, path: Iterable[Any]) -> str:
    return name + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)


def _wording(error: Any, name: str) -> str:
    """Values spelt as in the JSON of a conf (true, null) and the bounds named, for the keywords
    DAG params use; jsonschema's own message for the others."""
    keyword, argument, instance = error.validator, error.validator_value, error.instance
    value = _show(instance)
    if (
        keyword in ("minimum", "maximum")
        and error.schema.get(f"exclusive{keyword.title()}") is True
    ):
        keyword = f"exclusive{keyword.title()}"  # draft 4: a boolean beside the bound
    match keyword:
        case None:
            return "no value is allowed"  # the schema is `false`
        case "type":
            expected = [argument] if isinstance(argument, str) else argument
            return f"{value} is not of type {' or '.join(map(str, expected))}"
        case "enum":
            return f"{value} is not one of {', '.join(_show(choice) for choice in argument)}"
        case "const":
            return f"{value} is not {_show(argument)}"
        case "pattern":
            return f"{value} does not match {argument}"
        case "format":
            return f"{value} is not a valid {argument}"
        case "minItems" | "maxItems" | "minProperties" | "maxProperties":
            kind = "items" if keyword.endswith("Items") else "keys"
            bound = "fewer" if keyword.startswith("min") else "more"
            return f"has {len(instance)} {kind}, {bound} than {argument}"
        case "required":
            missing = ", ".join(repr(key) for key in argument if key not in instance)
            return f"lacks required key {missing}"
        case "additionalProperties" if argument is False:
            allowed = error.schema.get("properties", {})
            patterns = error.schema.get("patternProperties", {})
            extra = [
                repr(key)
                for key in instance
                if key not in allowed and not any(re.search(p, key) for p in patterns)
            ]
            return f"has keys the schema does not allow: {', '.join(extra)}"
        case "anyOf" | "oneOf" if error.context:
            reasons = "; ".join(_problem(alternative, name) for alternative in error.context)
            return f"{value} matches no alternative ({reasons})"
        case "oneOf":
            return f"{value} matches more than one of oneOf"
        case "not":
            return f"{value} matches a schema it must not"
        case "uniqueItems":
            seen: set[str] = set()
            for item in instance:
                key = json.dumps(item, sort_keys=True)
                if key in seen:
                    return f"{_show(item)} appears twice"
                seen.add(key)
        case str() if keyword in _BOUND_PHRASES:
            return f"{value} {_BOUND_PHRASES[keyword]} {argument}"
    return str(error.message)


def _is_date_time_schema(schema: Any) -> bool:
    return isinstance(schema, Mapping) and schema.get("format") == "date-time"


def _is_iso_8601_date_time(value: Any) -> bool:
    """As pendulum reads it for Airflow 2: a date alone is not a date-time."""
    if not isinstance(value, str):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _show(value: Any, limit: int = 60) -> str:
    text = (
        repr(value)
        if not isinstance(value, bool | type(None))
        else str(value).lower().replace("none", "null")
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"
