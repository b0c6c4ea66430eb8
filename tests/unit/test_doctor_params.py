"""The doctor's param check: the verdict Airflow would reach on a conf, reached beforehand.

Params are given as the REST API shows them (`/dags/{id}/details`): Airflow 2 adds `__class`,
Airflow 3 `source`; both give `value` (null without a default) and `schema`. The cases where
jsonschema's verdict is Airflow's own were checked against Airflow 2.11 and 3.3's `Param.resolve`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.doctor.params import Findings, ParamsVerdict, check_conf, validate

REPO = Path(__file__).resolve().parents[2]
DATE = r"^\d{4}-\d{2}-\d{2}$"
DRAFT_4 = "http://json-schema.org/draft-04/schema#"
STRICT_V2 = {"partition": {"value": None, "schema": {"type": "string", "pattern": DATE}, "description": None, "source": None}}  # fmt: skip
STRICT_V1 = {"partition": {"__class": "airflow.models.param.Param", "value": None, "description": None, "schema": {"pattern": DATE, "type": "string"}}}  # fmt: skip


@pytest.mark.parametrize("params", [STRICT_V1, STRICT_V2], ids=["airflow2", "airflow3"])
def test_the_strict_example_dag_needs_a_dated_partition(params: dict[str, Any]) -> None:
    missing = check_conf(params, {"provider": "gcs", "uri": "gs://b/x.csv"})
    assert missing.problems == (
        "partition: the conf has no 'partition' and the param has no default",
    )
    wrong = check_conf(params, {"partition": "2024/06/01"})
    assert wrong.problems == (rf"partition: '2024/06/01' does not match {DATE}",)
    assert check_conf(params, {"partition": "2024-06-01", "other": 1}).problems == ()
    assert check_conf(params, {"partition": "2024-06-01"}).checked == ("partition",)


def test_a_default_stands_in_for_a_missing_key_and_is_validated_too() -> None:
    params = {
        "limit": {"value": 10, "schema": {"type": "integer", "minimum": 1}},
        "mode": {"value": "full", "schema": {"enum": ["full", "delta"]}},
    }
    assert check_conf(params, {}).problems == ()
    assert check_conf(params, {"limit": 0, "mode": "partial"}).problems == (
        "limit: 0 is less than 1",
        "mode: 'partial' is not one of 'full', 'delta'",
    )


def test_a_param_whose_schema_allows_null_needs_no_value() -> None:
    params = {"note": {"value": None, "schema": {"type": ["null", "string"]}}}
    assert check_conf(params, {}).problems == ()


def test_a_param_without_a_schema_in_the_answer_is_reported_as_unchecked() -> None:
    verdict = check_conf({"old_style": 5}, {"old_style": "x"})
    assert verdict.problems == () and verdict.unchecked == (
        "old_style: the API does not show its schema",
    )


@pytest.mark.parametrize(
    ("value", "schema", "problem"),
    [
        ("7", {"type": "integer"}, "value: '7' is not of type integer"),
        (True, {"type": "integer"}, "value: true is not of type integer"),
        (3.0, {"type": "integer"}, None),
        (None, {"type": "string"}, "value: null is not of type string"),
        ("ab", {"minLength": 3}, "value: 'ab' is shorter than 3"),
        ("abcd", {"maxLength": 3}, "value: 'abcd' is longer than 3"),
        (5, {"exclusiveMaximum": 5}, "value: 5 is not less than 5"),
        (5, {"maximum": 5}, None),
        (5, {"$schema": DRAFT_4, "maximum": 5, "exclusiveMaximum": True}, "value: 5 is not less than 5"),
        (5, {"maximum": 5, "exclusiveMaximum": True}, "value: the schema is not valid JSON Schema: True is not of type 'number'"),
        (0.3, {"multipleOf": 0.1}, "value: 0.3 is not a multiple of 0.1"),
        (0.5, {"multipleOf": 0.25}, None),
        (7, {"multipleOf": 2}, "value: 7 is not a multiple of 2"),
        (1, {"enum": [True, "1"]}, "value: 1 is not one of true, '1'"),
        ("x", {"const": "y"}, "value: 'x' is not 'y'"),
        ("2024-02-30", {"format": "date"}, "value: '2024-02-30' is not a valid date"),
        ("2024-06-01", {"format": "date"}, None),
        ("2024-06-01T00:00:00Z", {"format": "date-time"}, None),
        ("2024-06-01 00:00", {"format": "date-time"}, "value: '2024-06-01 00:00' is not a valid date-time"),
        ("a@b", {"format": "email"}, None),
        ("300.1.1.1", {"format": "ipv4"}, "value: '300.1.1.1' is not a valid ipv4"),
        ([1, "a"], {"type": "array", "items": {"type": "string"}}, "value[0]: 1 is not of type string"),
        ([1, 1], {"uniqueItems": True}, "value: 1 appears twice"),
        ([], {"minItems": 1}, "value: has 0 items, fewer than 1"),
        ({"a": 1}, {"required": ["a", "b"]}, "value: lacks required key 'b'"),
        ({}, {"required": ["a", "b"]}, "value: lacks required key 'a', 'b'"),
        (1, False, "value: no value is allowed"),
        ({"a": 1, "z": 2}, {"properties": {"a": {}}, "additionalProperties": False}, "value: has keys the schema does not allow: 'z'"),
        ({"a": "x"}, {"properties": {"a": {"type": "integer"}}}, "value.a: 'x' is not of type integer"),
        (3, {"anyOf": [{"type": "string"}, {"minimum": 5}]}, "value: 3 matches no alternative (value: 3 is not of type string; value: 3 is less than 5)"),
        (6, {"oneOf": [{"minimum": 5}, {"type": "integer"}]}, "value: 6 matches more than one of oneOf"),
        ("x", {"not": {"type": "string"}}, "value: 'x' matches a schema it must not"),
        ("x", {"title": "X", "description": "y", "values_display": {}}, None),
    ],
)  # fmt: skip
def test_json_schema_keywords(
    value: Any, schema: dict[str, Any] | bool, problem: str | None
) -> None:
    findings = validate(value, schema)
    assert findings.problems == ((problem,) if problem else ())
    assert findings.unchecked == ()


def test_a_format_the_checker_cannot_judge_is_reported_rather_than_passed() -> None:
    findings = validate("a\nb", {"type": "string", "format": "multiline"})  # Airflow's UI's
    assert findings == Findings(unchecked=("value: format 'multiline' not checked",))


def test_a_ref_the_schema_does_not_hold_is_a_problem() -> None:
    findings = validate("x", {"$ref": "#/$defs/day", "type": "string"})
    assert findings.problems == ("value: the schema's $ref '/$defs/day' cannot be resolved",)
    day = {"$defs": {"day": {"pattern": DATE}}, "$ref": "#/$defs/day"}
    assert validate("2024/06/01", day).problems == (rf"value: '2024/06/01' does not match {DATE}",)


def test_without_jsonschema_nothing_is_checked_and_the_install_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    verdict = check_conf(STRICT_V2, {})
    assert verdict == ParamsVerdict(
        unchecked=("param partition: jsonschema is not installed: pip install 'dagtrigger[cli]'",)
    )


def test_airflow_2_accepts_iso_date_times_that_are_not_rfc_3339() -> None:
    schema = {"type": "string", "format": "date-time"}
    assert validate("2024-06-01T06:15", schema).problems
    assert not validate("2024-06-01T06:15", schema, lenient_date_time=True).problems
    assert validate("2024-06-01", schema, lenient_date_time=True).problems, "a date alone"


def test_the_functions_entry_points_never_import_jsonschema() -> None:
    """jsonschema comes with the CLI's extra, for the doctor: no function package carries it."""
    probe = (
        "import importlib.util, json, sys; sys.path.insert(0, 'functions'); "
        "import main, lambda_function; "
        "print(json.dumps({'installed': importlib.util.find_spec('jsonschema') is not None, "
        "'loaded': sorted(m for m in sys.modules if m.split('.')[0] == 'jsonschema')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == {"installed": True, "loaded": []}
