"""Conf templates read event fields and nothing else; every other syntax is refused at load."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from dagtrigger.errors import ConfigurationError, RouteError
from dagtrigger.templates import (
    MAX_KEYS,
    MissingValueError,
    Placeholder,
    TemplateSyntaxError,
    compile_conf,
    parse_template,
)

FIELDS: dict[str, Any] = {
    "bucket": "raw",
    "name": "sales/2024-05-01/day.csv",
    "size": 1234,
    "event_time": None,
    "metadata": {"owner": "finance", "x-goog-meta-team": "bi", "2024": "year"},
    "data": {"order": {"id": 7, "lines": [1, 2]}, "{x}": "{bucket}"},
    "attributes": {"eventType": "OBJECT_FINALIZE"},
}


def render(template: str, fields: dict[str, Any] = FIELDS) -> Any:
    return parse_template(template).render(fields)


def render_conf(conf: dict[str, Any], fields: dict[str, Any] = FIELDS) -> Any:
    return compile_conf(conf, fields=fields.keys()).render(fields)


# --- What a template renders to


def test_text_without_placeholders_is_kept() -> None:
    assert render("plain text / with: punctuation!") == "plain text / with: punctuation!"


def test_empty_string_renders_empty() -> None:
    assert render("") == ""


def test_doubled_braces_are_literal_braces() -> None:
    assert render("{{bucket}}") == "{bucket}"
    assert render("{{{bucket}}}") == "{raw}"
    assert render("a}}b{{c") == "a}b{c"


def test_lone_placeholder_keeps_the_native_value() -> None:
    assert render("{size}") == 1234
    assert render("{metadata}") == FIELDS["metadata"]
    assert render("{event_time}") is None
    assert render("{data.order.lines}") == [1, 2]


def test_placeholders_in_text_are_formatted_with_str() -> None:
    assert render("gs://{bucket}/{name} ({size} bytes)") == (
        "gs://raw/sales/2024-05-01/day.csv (1234 bytes)"
    )


def test_none_in_text_renders_as_empty_string() -> None:
    assert render("at [{event_time}]") == "at []"


def test_dotted_keys_read_nested_mappings() -> None:
    assert render("{metadata.owner}") == "finance"
    assert render("{data.order.id}") == 7
    assert render("team={metadata.x-goog-meta-team}") == "team=bi"
    assert render("{metadata.2024}") == "year"
    assert render("{attributes.eventType}") == "OBJECT_FINALIZE"


def test_keys_may_go_max_keys_deep() -> None:
    deep: dict[str, Any] = {"leaf": "bottom"}
    for _ in range(MAX_KEYS - 1):
        deep = {"k": deep}
    path = ".".join(["k"] * (MAX_KEYS - 1) + ["leaf"])
    assert render(f"{{data.{path}}}", {"data": deep}) == "bottom"


def test_values_are_inserted_once_and_never_expanded_again() -> None:
    fields = {**FIELDS, "name": "{bucket}/{{size}}.txt"}
    assert render("{name}", fields) == "{bucket}/{{size}}.txt"
    assert render("file={name}", fields) == "file={bucket}/{{size}}.txt"
    assert render("{data}")["{x}"] == "{bucket}"
    assert render("{data.order.id}-{data}") == "7-" + str(FIELDS["data"])


def test_long_templates_render_quickly() -> None:
    template = "{bucket}/" * 20_000 + "x" * 100_000
    started = time.perf_counter()
    rendered = render(template)
    assert rendered == "raw/" * 20_000 + "x" * 100_000
    assert time.perf_counter() - started < 2


# --- Whole confs


def test_conf_renders_nested_objects_and_arrays() -> None:
    conf = {
        "file": {"uri": "gs://{bucket}/{name}", "size": "{size}"},
        "tags": ["{metadata.owner}", "fixed", ["{bucket}"]],
    }
    assert render_conf(conf) == {
        "file": {"uri": "gs://raw/sales/2024-05-01/day.csv", "size": 1234},
        "tags": ["finance", "fixed", ["raw"]],
    }


def test_conf_numbers_booleans_and_null_pass_through() -> None:
    conf = {"n": 3, "f": 1.5, "yes": True, "no": False, "none": None}
    assert render_conf(conf) == conf


def test_conf_keys_are_not_templates() -> None:
    assert render_conf({"{bucket}": "{bucket}"}) == {"{bucket}": "raw"}


def test_conf_refuses_a_placeholder_for_an_unknown_field() -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        compile_conf({"files": ["ok", {"p": "x-{dat}"}]}, fields=["date", "bucket"])
    assert caught.value.problem == 'conf.files[1].p: "x-{dat}": unknown field "dat" in {dat}'
    assert caught.value.fix == "use one of the fields bucket, date"


@pytest.mark.parametrize(
    ("value", "kind"),
    [(object(), "a Python object"), ({1, 2}, "a Python set"), ((1, 2), "a Python tuple")],
)
def test_conf_refuses_values_that_are_not_json(value: object, kind: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=f"^conf.v: {kind} is not a JSON value: "):
        compile_conf({"v": value}, fields=[])


def test_conf_refuses_keys_that_are_not_strings() -> None:
    with pytest.raises(
        TemplateSyntaxError, match=r"^conf.a: key 1 is not a string: use text keys$"
    ):
        compile_conf({"a": {1: "x"}}, fields=[])


def test_conf_error_shows_long_templates_cut_short() -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        compile_conf({"a": "x" * 500 + "{size:>3}"}, fields=["size"])
    message = str(caught.value)
    assert message.startswith('conf.a: "' + "x" * 80 + '...": format specs are not supported')
    assert len(message) < 300


# --- Hostile and malformed templates fail at load


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{size:>10}", "format specs are not supported: {size:>10}"),
        ("{name!r}", "conversions are not supported: {name!r}"),
        ("{a[0]}", "indexing with [] is not supported: {a[0]}"),
        ("{data[__class__]}", "indexing with [] is not supported"),
        ("{0}", "positional fields are not supported: {0}"),
        ("{}", "{} is empty"),
        ("{__class__}", 'names starting with "_" are not allowed: {__class__}'),
        ("{name.__class__}", 'names starting with "_" are not allowed: {name.__class__}'),
        ("{name.__globals__}", 'names starting with "_" are not allowed'),
        ("{event.__init__.__globals__}", 'names starting with "_" are not allowed'),
        ("{data.__class__}", 'names starting with "_" are not allowed'),
        ("{metadata.__len__}", 'names starting with "_" are not allowed'),
        ("{_private}", 'names starting with "_" are not allowed'),
        ("{ name }", "{ name } is not a placeholder"),
        ("{a..b}", "{a..b} is not a placeholder"),
        ("{a.}", "{a.} is not a placeholder"),
        ("{a-b}", "{a-b} is not a placeholder"),
        ("{name()}", "{name()} is not a placeholder"),
        ("x{", 'unbalanced "{" at character 2'),
        ("x}y", 'unbalanced "}" at character 2'),
        ("{name}}", 'unbalanced "}" at character 7'),
        ("{{name}", 'unbalanced "}" at character 7'),
        ("{a{b}}", 'unbalanced "{" at character 1'),
    ],
)
def test_bad_syntax_is_refused(template: str, problem: str) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        parse_template(template)
    assert caught.value.problem.startswith(problem)
    assert caught.value.fix is not None
    assert caught.value.fix.startswith("write placeholders as {field} or {field.key.key}")
    assert caught.value.fix.endswith('"{{" or "}}" for a literal brace')


def test_too_many_keys_are_refused() -> None:
    too_deep = "{data." + ".".join(["k"] * (MAX_KEYS + 1)) + "}"
    with pytest.raises(TemplateSyntaxError, match=f"has {MAX_KEYS + 1} keys") as caught:
        parse_template(too_deep)
    assert caught.value.fix == f"use at most {MAX_KEYS}"


def test_syntax_errors_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        parse_template("{size:d}")


# --- Missing values fail at render, and lookups never touch attributes


def test_missing_field_raises_naming_the_placeholder() -> None:
    with pytest.raises(MissingValueError) as caught:
        render("{message_id}")
    assert caught.value.placeholder == Placeholder("message_id")
    assert str(caught.value) == '{message_id} has no value (the event has no field "message_id")'
    assert isinstance(caught.value, RouteError)


def test_missing_key_raises_naming_the_mapping() -> None:
    with pytest.raises(MissingValueError, match=r'"metadata" has no key "team"'):
        render("team={metadata.team}")
    with pytest.raises(MissingValueError, match=r'"data.order" has no key "missing"'):
        render("{data.order.missing.deeper}")


def test_keys_only_look_into_mappings() -> None:
    with pytest.raises(MissingValueError, match=r'"size" is a number, not an object'):
        render("{size.real}")
    with pytest.raises(MissingValueError, match=r'"data.order.lines" is an array, not an object'):
        render("{data.order.lines.0}")
    with pytest.raises(MissingValueError, match=r'"name" is a string, not an object'):
        render("{name.upper}")


def test_attributes_of_objects_are_never_read() -> None:
    fields = {"thing": SimpleNamespace(secret="s3cr3t", items={"a": 1})}
    with pytest.raises(
        MissingValueError, match=r'"thing" is a Python SimpleNamespace, not an object'
    ):
        render("{thing.secret}", fields)
