"""Routes that record asset events: what they plan for an event, and the rules they refuse."""

from __future__ import annotations

from typing import Any

import pytest

from dagtrigger.assets import IDENTITY_KEY
from dagtrigger.dispatch import plan_events
from dagtrigger.errors import ConfigurationError
from dagtrigger.events import Normalised
from dagtrigger.events.model import Event
from dagtrigger.routing import Router
from dagtrigger.run_id import build_dag_run_id
from tests.unit.test_routing import gcs_event, message_event, s3_event

HOURLY = "sales/day=2026-11-20/hour=13/part-0001.parquet"
HOURLY_RULE = {
    "name": "hourly-sales",
    "match": {"regex": r"^sales/day=(?P<day>[0-9-]+)/hour=(?P<hour>[0-9]{2})/"},
    "asset": "gs://acme-landing/sales",
    "partition_key": "{day}T{hour}",
}


def plan(rules: list[dict[str, Any]], event: Event, **options: Any) -> Any:
    return plan_events(Normalised((event,)), Router.from_rules(rules, **options))


def load_error(rules: list[dict[str, Any]], **options: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        Router.from_rules(rules, **options)
    return caught.value


def test_a_route_with_an_asset_and_no_dag_records_an_asset_event_and_starts_no_run() -> None:
    event = gcs_event(HOURLY)

    planned = plan([HOURLY_RULE], event, default_dag_id="ignored_for_asset_routes")

    assert planned.runs == ()
    [asset_event] = planned.asset_events
    assert asset_event.asset == "gs://acme-landing/sales"
    assert asset_event.partition_key == "2026-11-20T13"
    assert asset_event.route == "hourly-sales"
    # The extra is the event's default conf, with the event's identity: its run id, the same
    # for the object through any carrier (tests/events pins those ids).
    identity = build_dag_run_id(event)
    assert asset_event.key == identity
    assert asset_event.extra == {**event.default_conf(), IDENTITY_KEY: identity}


def test_a_route_with_a_dag_and_an_asset_plans_both() -> None:
    rule = {**HOURLY_RULE, "dag_id": "load_sales", "conf": {"day": "{day}"}}

    planned = plan([rule], gcs_event(HOURLY))

    [run] = planned.runs
    assert (run.dag_id, run.conf["day"]) == ("load_sales", "2026-11-20")
    assert [a.partition_key for a in planned.asset_events] == ["2026-11-20T13"]


def test_extra_is_templated_over_the_default_conf_or_replaces_it() -> None:
    templated = {**HOURLY_RULE, "extra": {"day": "{day}", "hour": "{hour}", "team": "sales"}}
    replaced = {**templated, "replace_extra": True}
    event = gcs_event(HOURLY)

    [merged] = plan([templated], event).asset_events
    [alone] = plan([replaced], event).asset_events

    assert merged.extra["name"] == HOURLY
    assert (merged.extra["day"], merged.extra["hour"], merged.extra["team"]) == (
        "2026-11-20",
        "13",
        "sales",
    )
    assert alone.extra == {
        "day": "2026-11-20",
        "hour": "13",
        "team": "sales",
        IDENTITY_KEY: build_dag_run_id(event),
    }


def test_one_asset_event_per_asset_the_first_matching_route_wins() -> None:
    rules = [
        {"name": "first", "asset": "s3://bucket/key"},
        {"name": "second", "asset": "s3://bucket/key", "extra": {"x": 1}},
        {"name": "other", "asset": "s3://bucket/other"},
    ]

    planned = plan(rules, s3_event())

    assert [(a.route, a.asset) for a in planned.asset_events] == [
        ("first", "s3://bucket/key"),
        ("other", "s3://bucket/other"),
    ]
    assert planned.notes == (
        'route "second" also matched asset "s3://bucket/key"; the first matching route "first" '
        "wins",
    )


def test_a_partition_key_the_event_cannot_fill_is_a_route_error_naming_the_route() -> None:
    rule = {"name": "keyed", "asset": "a", "partition_key": "{metadata.day}"}

    planned = plan([rule], gcs_event())

    assert planned.asset_events == ()
    [error] = planned.route_errors
    assert error.problem.startswith('route "keyed": "{metadata.day}" has no value for event')


def test_a_partition_key_that_renders_empty_or_too_long_is_refused_at_planning() -> None:
    empty = {"name": "empty", "asset": "a", "partition_key": "{attributes.day}"}
    event = message_event(attributes={"day": " "})

    [error] = plan([empty], event).route_errors

    assert "the partition key of the asset event for 'a'" in error.problem
    assert error.problem.endswith("is empty")
    assert error.fix is not None and "at most 250 characters" in error.fix


@pytest.mark.parametrize(
    ("rule", "problem", "fix"),
    [
        ({"dag_id": "d", "extra": {}}, '"extra" is set without "asset"', 'add "asset"'),
        ({"partition_key": "{day}", "dag_id": "d"}, '"partition_key" is set without', "add"),
        ({"asset": ""}, '"asset" must be an asset\'s URI or name, not an empty string', "e.g."),
        ({"asset": 3}, '"asset" must be an asset\'s URI or name, not a number', "e.g."),
        ({"asset": "a", "extra": []}, '"extra" must be an object, not an array', "write it"),
        ({"asset": "a", "replace_extra": "yes"}, '"replace_extra" must be true or false', "write"),
        ({"asset": "a", "partition_key": 7}, '"partition_key" must be a non-empty string', "e.g."),
        ({"asset": "a", "partition_key": "{dya}"}, 'unknown field "dya"', "use one of the fields"),
        ({"asset": "a", "extra": {"d": "{size:>3}"}}, "format specs are not supported", "write"),
        ({"asset": "a", "conf": {"x": 1}}, '"conf" and "replace_conf" shape a DAG run', 'add "dag_id"'),
    ],
    ids=[
        "extra-without-asset",
        "partition-without-asset",
        "empty-asset",
        "asset-not-text",
        "extra-not-object",
        "replace-extra-not-boolean",
        "partition-key-not-text",
        "partition-key-unknown-field",
        "extra-bad-template",
        "conf-without-dag",
    ],
)  # fmt: skip
def test_bad_asset_rules_are_refused_at_load_with_their_fix(
    rule: dict[str, Any], problem: str, fix: str
) -> None:
    error = load_error([rule])

    assert problem in error.problem
    assert error.problem.startswith("DAGTRIGGER_ROUTES: route #1: ")
    assert error.fix is not None and error.fix.startswith(fix), error.fix
