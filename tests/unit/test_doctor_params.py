"""The doctor's param check: the verdict Airflow would reach on a conf, reached beforehand.

Params are given as the REST API shows them (`/dags/{id}/details`): Airflow 2 adds `__class`,
Airflow 3 `source`; both give `value` (null without a default) and `schema`.
"""

from __future__ import annotations

from typing import Any

import pytest

from dagtrigger.doctor.params import check_conf, validate

DATE = r"^\d{4}-\d{2}-\d{2}$"
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
        (5, {"maximum": 5, "exclusiveMaximum": True}, "value: 5 is not less than 5"),
        (0.3, {"multipleOf": 0.1}, None),
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
        ({"a": 1, "z": 2}, {"properties": {"a": {}}, "additionalProperties": False}, "value: has keys the schema does not allow: 'z'"),
        ({"a": "x"}, {"properties": {"a": {"type": "integer"}}}, "value.a: 'x' is not of type integer"),
        (3, {"anyOf": [{"type": "string"}, {"minimum": 5}]}, "value: 3 matches no alternative (value: 3 is not of type string; value: 3 is less than 5)"),
        (6, {"oneOf": [{"minimum": 5}, {"type": "integer"}]}, "value: 6 matches more than one of oneOf"),
        ("x", {"not": {"type": "string"}}, "value: 'x' matches a schema it must not"),
        ("x", {"title": "X", "description": "y", "values_display": {}}, None),
    ],
)  # fmt: skip
def test_json_schema_keywords(value: Any, schema: dict[str, Any], problem: str | None) -> None:
    findings = validate(value, schema)
    assert findings.problems == ((problem,) if problem else ())
    assert findings.unchecked == ()


def test_what_the_validator_does_not_know_it_says_rather_than_passes() -> None:
    findings = validate("x", {"format": "uri", "$ref": "#/defs/a", "type": "string"})
    assert findings.problems == ()
    assert findings.unchecked == (
        "value: format 'uri' not checked",
        "value: keyword '$ref' not checked",
    )


def test_airflow_2_accepts_iso_date_times_that_are_not_rfc_3339() -> None:
    schema = {"type": "string", "format": "date-time"}
    assert validate("2024-06-01T06:15", schema).problems
    assert not validate("2024-06-01T06:15", schema, lenient_date_time=True).problems
