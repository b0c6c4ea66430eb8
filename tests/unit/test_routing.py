"""Routing rules: which DAGs an event starts, with which conf, and every mistake caught at load."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.errors import ConfigurationError, RouteError
from dagtrigger.events.model import BridgeEvent, Event, Message, StorageObject
from dagtrigger.routing import DEFAULT_CONF_FIELDS, PlannedTrigger, Router, Routing
from tests.hostile import LONG, NEWLINES, SHELL, TEMPLATE, TRAVERSAL, UNICODE

REPO = Path(__file__).resolve().parents[2]

GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def gcs_event(
    name: str = "sales/2024-05-01/day.csv",
    bucket: str = "raw",
    *,
    size: int | None = 1234,
    metadata: dict[str, str] | None = None,
) -> Event:
    return Event(
        provider="gcs",
        event_id="evt-1",
        event_type=GCS_FINALIZED,
        event_time="2024-05-01T10:00:00Z",
        identity=("object", bucket, name, "1"),
        object=StorageObject(
            scheme="gs",
            bucket=bucket,
            name=name,
            size=size,
            content_type="text/csv",
            version="1",
            metadata=metadata or {},
        ),
    )


def s3_event(name: str = "key.csv", bucket: str = "bucket") -> Event:
    return Event(
        provider="s3",
        event_id="evt-2",
        event_type="ObjectCreated:Put",
        event_time=None,
        identity=("object", bucket, name, "seq"),
        object=StorageObject(scheme="s3", bucket=bucket, name=name, size=10),
    )


def message_event(
    provider: str = "pubsub", *, data: Any = None, attributes: dict[str, str] | None = None
) -> Event:
    event_type = PUBSUB_PUBLISHED if provider == "pubsub" else "message"
    return Event(
        provider=provider,
        event_id="evt-3",
        event_type=event_type,
        event_time=None,
        identity=("message", "m-1"),
        message=Message(message_id="m-1", data=data, attributes=attributes or {}),
    )


def bridge_event(source: str = "aws.glue", detail_type: str = "Glue Job State Change") -> Event:
    return Event(
        provider="eventbridge",
        event_id="evt-4",
        event_type=detail_type,
        event_time=None,
        identity=("bridge", "evt-4"),
        bridge=BridgeEvent(source=source, detail_type=detail_type, detail={"state": "SUCCEEDED"}),
    )


FINALIZE_NOTIFICATION = message_event(attributes={"eventType": "OBJECT_FINALIZE"})
A1_B2 = {"a": "1", "b": "2"}


def dags(routing: Routing) -> list[str]:
    return [trigger.dag_id for trigger in routing.triggers]


def matches(match: dict[str, Any], event: Event) -> bool:
    routing = Router.from_rules([{"dag_id": "d", "match": match}]).route(event)
    return bool(routing.triggers)


def load_error(rules: Any, **options: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        Router.from_rules(rules, **options)
    return str(caught.value)


# --- Single-DAG mode


def test_single_sends_every_event_to_the_dag_with_the_default_conf() -> None:
    router = Router.single("ingest")
    for event in (gcs_event(), s3_event(), message_event(data={"a": 1}), bridge_event()):
        routing = router.route(event)
        assert routing == Routing(
            triggers=(PlannedTrigger("ingest", event.default_conf(), "DAG_ID", event),),
            ignored=None,
            notes=(),
        )


def test_single_refuses_an_invalid_dag_id() -> None:
    with pytest.raises(ConfigurationError, match=r'^DAG_ID: "load sales" is not a valid DAG id'):
        Router.single("load sales")


# --- Rule shapes


def test_rules_may_be_a_list_or_an_object_with_routes() -> None:
    rule = {"match": {"provider": "gcs"}, "dag_id": "load"}
    for rules in ([rule], {"routes": [rule]}):
        assert dags(Router.from_rules(rules).route(gcs_event())) == ["load"]


@pytest.mark.parametrize("match", [None, {}])
def test_a_rule_without_matchers_matches_every_event(match: dict[str, Any] | None) -> None:
    rule: dict[str, Any] = {"dag_id": "all"}
    if match is not None:
        rule["match"] = match
    router = Router.from_rules([rule])
    for event in (gcs_event(), message_event(), bridge_event()):
        assert dags(router.route(event)) == ["all"]


def test_unnamed_rules_are_named_by_position() -> None:
    router = Router.from_rules([{"dag_id": "a", "match": {"provider": "s3"}}, {"dag_id": "b"}])
    assert [trigger.route for trigger in router.route(gcs_event()).triggers] == ["route-2"]


# --- Each matcher


@pytest.mark.parametrize(
    ("match", "event", "expected"),
    [
        ({"provider": "gcs"}, gcs_event(), True),
        ({"provider": "s3"}, gcs_event(), False),
        ({"provider": ["s3", "gcs"]}, gcs_event(), True),
        ({"provider": ["sqs", "sns"]}, message_event("sns"), True),
        ({"event_type": "ObjectCreated:*"}, s3_event(), True),
        ({"event_type": "ObjectRemoved:*"}, s3_event(), False),
        ({"event_type": ["ObjectRemoved:*", "*.finalized"]}, gcs_event(), True),
        ({"bucket": "raw"}, gcs_event(), True),
        ({"bucket": "raw-*"}, gcs_event(bucket="raw-eu"), True),
        ({"bucket": "raw-*"}, gcs_event(bucket="raw"), False),
        ({"bucket": ["a", "r?w"]}, gcs_event(), True),
        ({"prefix": "sales/"}, gcs_event(), True),
        ({"prefix": "Sales/"}, gcs_event(), False),
        ({"prefix": ["hr/", "sales/2024"]}, gcs_event(), True),
        ({"prefix": ""}, gcs_event(), True),
        ({"suffix": ".csv"}, gcs_event(), True),
        ({"suffix": ".json"}, gcs_event(), False),
        ({"suffix": [".json", ".csv"]}, gcs_event(), True),
        ({"glob": "sales/*.csv"}, gcs_event(), True),  # "*" also crosses "/"
        ({"glob": "sales/*.CSV"}, gcs_event(), False),  # case-sensitive
        ({"glob": "sales/????-??-??/[a-z]*.csv"}, gcs_event(), True),
        ({"glob": ["x/*", "*/day.csv"]}, gcs_event(), True),
        ({"glob": "sales/"}, gcs_event(), False),  # a glob matches the whole name
        ({"regex": r"\d{4}-\d{2}"}, gcs_event(), True),  # searched anywhere in the name
        ({"regex": r"^\d{4}"}, gcs_event(), False),
        ({"attributes": {"eventType": "OBJECT_*"}}, FINALIZE_NOTIFICATION, True),
        ({"attributes": {"eventType": "OBJECT_DELETE"}}, FINALIZE_NOTIFICATION, False),
        ({"attributes": {"eventType": ["X", "OBJECT_FINALIZE"]}}, FINALIZE_NOTIFICATION, True),
        ({"attributes": {"eventType": "*"}}, message_event(attributes={}), False),
        ({"attributes": {"a": "1", "b": "2"}}, message_event("sqs", attributes=A1_B2), True),
        ({"attributes": {"a": "1", "b": "2"}}, message_event("sqs", attributes={"a": "1"}), False),
        ({"source": "aws.*"}, bridge_event(), True),
        ({"source": ["aws.s3", "aws.batch"]}, bridge_event(), False),
        ({"detail_type": "Glue Job *"}, bridge_event(), True),
        ({"detail_type": "EC2*"}, bridge_event(), False),
    ],
)  # fmt: skip
def test_matcher(match: dict[str, Any], event: Event, expected: bool) -> None:
    assert matches(match, event) is expected


@pytest.mark.parametrize(
    ("match", "event"),
    [
        ({"bucket": "*"}, message_event()),
        ({"prefix": ""}, bridge_event()),
        ({"suffix": ""}, message_event("sqs")),
        ({"glob": "*"}, message_event("sns")),
        ({"regex": ""}, bridge_event()),
        ({"attributes": {"k": "*"}}, gcs_event()),
        ({"attributes": {"k": "*"}}, bridge_event()),
        ({"source": "*"}, gcs_event()),
        ({"detail_type": "*"}, message_event()),
    ],
)
def test_a_matcher_for_another_kind_of_event_does_not_match(
    match: dict[str, Any], event: Event
) -> None:
    assert matches(match, event) is False


def test_every_matcher_of_a_rule_must_match() -> None:
    match = {"provider": "gcs", "bucket": "raw", "prefix": "sales/", "suffix": ".csv"}
    assert matches(match, gcs_event()) is True
    assert matches(match, gcs_event(bucket="other")) is False
    assert matches(match, gcs_event(name="sales/2024-05-01/day.json")) is False
    assert matches(match, gcs_event(name="hr/day.csv")) is False


# --- Multiple rules


def test_every_matching_rule_starts_its_dag() -> None:
    router = Router.from_rules(
        [
            {"name": "sales", "match": {"prefix": "sales/"}, "dag_id": "load_sales"},
            {"name": "hr", "match": {"prefix": "hr/"}, "dag_id": "load_hr"},
            {"name": "audit", "dag_id": "audit"},
        ]
    )
    routing = router.route(gcs_event())
    assert dags(routing) == ["load_sales", "audit"]
    assert [trigger.route for trigger in routing.triggers] == ["sales", "audit"]
    assert routing.ignored is None
    assert routing.notes == ()


def test_the_first_matching_rule_for_a_dag_wins_and_a_note_says_so() -> None:
    router = Router.from_rules(
        [
            {"name": "a", "match": {"suffix": ".csv"}, "dag_id": "x", "conf": {"from": "a"}},
            {"name": "other", "dag_id": "y"},
            {"name": "b", "match": {"prefix": "sales/"}, "dag_id": "x", "conf": {"from": "b"}},
        ]
    )
    routing = router.route(gcs_event())
    assert dags(routing) == ["x", "y"]
    assert routing.triggers[0].conf["from"] == "a"
    assert routing.notes == ('route "b" also matched DAG "x"; the first matching route "a" wins',)


def test_a_rule_that_loses_to_an_earlier_one_is_not_rendered() -> None:
    router = Router.from_rules(
        [
            {"name": "a", "dag_id": "x"},
            {"name": "b", "dag_id": "x", "conf": {"topic": "{message_id}"}},
        ]
    )
    assert dags(router.route(gcs_event())) == ["x"]


def test_an_event_no_rule_matches_is_ignored_with_the_reason() -> None:
    router = Router.from_rules(
        [
            {"match": {"provider": "s3"}, "dag_id": "a"},
            {"match": {"prefix": "hr/"}, "dag_id": "b"},
            {"match": {"suffix": ".json"}, "dag_id": "c"},
        ]
    )
    routing = router.route(gcs_event(name="raw/x.txt", bucket="landing"))
    assert routing == Routing(
        triggers=(),
        ignored=f"no route matched (3 routes; event gcs {GCS_FINALIZED} landing/raw/x.txt)",
        notes=(),
    )


def test_the_ignored_reason_counts_one_route_in_the_singular() -> None:
    routing = Router.from_rules([{"match": {"provider": "s3"}, "dag_id": "a"}]).route(
        message_event(attributes={})
    )
    assert routing.ignored == f"no route matched (1 route; event pubsub {PUBSUB_PUBLISHED} m-1)"


# --- The conf a rule builds


def test_rule_conf_is_added_on_top_of_the_default_conf() -> None:
    event = gcs_event()
    router = Router.from_rules([{"dag_id": "d", "conf": {"env": "prod", "name": "renamed"}}])
    (trigger,) = router.route(event).triggers
    assert trigger.conf == {**event.default_conf(), "env": "prod", "name": "renamed"}


def test_replace_conf_sends_only_the_rendered_rule_conf() -> None:
    router = Router.from_rules(
        [{"dag_id": "d", "conf": {"path": "{uri}", "n": 1}, "replace_conf": True}]
    )
    (trigger,) = router.route(gcs_event()).triggers
    assert trigger.conf == {"path": "gs://raw/sales/2024-05-01/day.csv", "n": 1}


def test_replace_conf_without_conf_sends_an_empty_conf() -> None:
    router = Router.from_rules([{"dag_id": "d", "replace_conf": True}])
    assert router.route(gcs_event()).triggers[0].conf == {}


def test_regex_groups_fill_the_template_and_values_keep_their_type() -> None:
    router = Router.from_rules(
        {
            "routes": [
                {
                    "name": "daily-sales",
                    "match": {
                        "provider": ["gcs", "s3"],
                        "regex": r"^sales/(?P<date>\d{4}-\d{2}-\d{2})/(?P<file>[^/]+)$",
                    },
                    "dag_id": "load_sales",
                    "conf": {
                        "partition": "{date}",
                        "file": "{uri}",
                        "size": "{size}",
                        "meta": "{metadata}",
                        "label": "{file} ({size} bytes, owner {metadata.owner})",
                        "steps": [{"day": "{date}"}, 3, None, True],
                    },
                    "replace_conf": True,
                }
            ]
        }
    )
    event = gcs_event(metadata={"owner": "finance"})
    assert router.route(event).triggers == (
        PlannedTrigger(
            dag_id="load_sales",
            conf={
                "partition": "2024-05-01",
                "file": "gs://raw/sales/2024-05-01/day.csv",
                "size": 1234,
                "meta": {"owner": "finance"},
                "label": "day.csv (1234 bytes, owner finance)",
                "steps": [{"day": "2024-05-01"}, 3, None, True],
            },
            route="daily-sales",
            event=event,
        ),
    )


def test_a_regex_group_that_did_not_take_part_renders_as_none() -> None:
    router = Router.from_rules(
        [
            {
                "match": {"regex": r"^(?P<area>[a-z]+)/(?:(?P<day>\d{4}-\d{2}-\d{2})/)?"},
                "dag_id": "d",
                "conf": {"day": "{day}", "text": "day={day}"},
                "replace_conf": True,
            }
        ]
    )
    assert router.route(gcs_event(name="hr/x.csv")).triggers[0].conf == {
        "day": None,
        "text": "day=",
    }


def test_message_fields_can_be_templated() -> None:
    router = Router.from_rules(
        [
            {
                "dag_id": "orders",
                "conf": {"order": "{data.order.id}", "kind": "{attributes.kind}"},
                "replace_conf": True,
            }
        ]
    )
    event = message_event(data={"order": {"id": 42}}, attributes={"kind": "new"})
    assert router.route(event).triggers[0].conf == {"order": 42, "kind": "new"}


def test_event_values_that_look_like_templates_stay_literal() -> None:
    router = Router.from_rules([{"dag_id": "d", "conf": {"n": "{name}"}, "replace_conf": True}])
    assert router.route(gcs_event(name="{bucket}/{{x}}")).triggers[0].conf == {
        "n": "{bucket}/{{x}}"
    }


def test_a_field_the_event_lacks_is_a_route_error_naming_route_placeholder_and_event() -> None:
    router = Router.from_rules([{"name": "daily-sales", "dag_id": "d", "conf": {"b": "{bucket}"}}])
    with pytest.raises(RouteError) as caught:
        router.route(message_event())
    assert str(caught.value) == (
        f'route "daily-sales": "{{bucket}}" has no value for event pubsub {PUBSUB_PUBLISHED} m-1 '
        '(the event has no field "bucket"): narrow the route\'s match to events that have it, or '
        "leave it out of the route"
    )


def test_a_missing_key_is_a_route_error() -> None:
    router = Router.from_rules([{"name": "r", "dag_id": "d", "conf": {"o": "{metadata.owner}"}}])
    with pytest.raises(RouteError) as caught:
        router.route(s3_event())
    assert str(caught.value) == (
        'route "r": "{metadata.owner}" has no value for event s3 ObjectCreated:Put bucket/key.csv '
        '("metadata" has no key "owner"): narrow the route\'s match to events that have it, or '
        "leave it out of the route"
    )


# --- default_dag_id


def test_default_dag_id_fills_rules_without_one() -> None:
    router = Router.from_rules(
        [{"match": {"suffix": ".csv"}}, {"match": {"prefix": "sales/"}, "dag_id": "other"}],
        default_dag_id="ingest",
    )
    assert dags(router.route(gcs_event())) == ["ingest", "other"]


# --- Load-time errors name the setting, the rule, the field and the fix


ALLOWED_MATCH = (
    "provider, event_type, bucket, prefix, suffix, glob, regex, attributes, source, detail_type"
)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("load", 'DAGTRIGGER_ROUTES: expected a list of routes, got a string'),
        ([], "DAGTRIGGER_ROUTES: there are no routes: add at least one"),
        ({"routes": []}, "DAGTRIGGER_ROUTES: there are no routes: add at least one"),
        ({"route": []}, 'unknown key "route" at the top level: write {"routes": [...]}'),
        ({}, 'DAGTRIGGER_ROUTES: missing "routes": write {"routes": [...]}'),
        ({"routes": {"dag_id": "x"}}, 'expected a list of routes, got an obj'),
        (["x"], "DAGTRIGGER_ROUTES: route #1: must be an object, not a string"),
        ([{"name": "", "dag_id": "x"}], 'route #1: "name" must be a non-empty string'),
        ([{"name": 3, "dag_id": "x"}], 'route #1: "name" must be a non-empty string'),
        (
            [{"name": "daily-sales", "dag_id": "x", "match": {"prefx": "a"}}],
            'DAGTRIGGER_ROUTES: route "daily-sales": unknown key "prefx" in "match": '
            f"use only {ALLOWED_MATCH}",
        ),
        (
            [{"dag_id": "x"}, {"dagid": "x"}],
            'route #2: unknown key "dagid" in the route: '
            "use only name, match, dag_id, conf, replace_conf",
        ),
        ([{"dag_id": "x", "match": []}], 'route #1: "match" must be an object, not an array'),
        ([{"match": {}}], 'route #1: has no "dag_id": add one (or "asset"), or set DAG_ID as the default'),
        ([{"dag_id": ""}], 'route #1: "dag_id": the DAG id is empty'),
        ([{"dag_id": None}], 'route #1: "dag_id": the DAG id must be a string, not null'),
        ([{"dag_id": "a/b"}], 'route #1: "dag_id": "a/b" is not a valid DAG id: use only letters'),
        ([{"dag_id": "x" * 251}], "the DAG id is 251 characters long; Airflow allows 250"),
        (
            [{"dag_id": "x", "match": {"provider": "gsc"}}],
            'route #1: unknown provider "gsc" in "match.provider": '
            "use one of gcs, pubsub, s3, sqs, sns, eventbridge",
        ),
        (
            [{"dag_id": "x", "match": {"provider": ["gcs", "GCS"]}}],
            'unknown provider "GCS" in "match.provider"',
        ),
        (
            [{"dag_id": "x", "match": {"bucket": 3}}],
            'route #1: "match.bucket" must be a string or a list of strings, not a number',
        ),
        (
            [{"dag_id": "x", "match": {"glob": ["*.csv", None]}}],
            '"match.glob" must be a string or a list of strings, not an array',
        ),
        (
            [{"dag_id": "x", "match": {"suffix": []}}],
            'route #1: "match.suffix" is an empty list, which matches nothing: remove it',
        ),
        (
            [{"dag_id": "x", "match": {"regex": "sales/(?P<date"}}],
            'route #1: "match.regex" is not a valid regular expression: invalid named capture '
            "group: (?P<date. Routes use RE2 syntax: named groups as (?P<name>...);",
        ),
        (
            [{"dag_id": "x", "match": {"regex": ["a"]}}],
            '"match.regex" must be a string, not an array',
        ),
        (
            [{"dag_id": "x", "match": {"regex": r"(?P<name>[^/]+)$"}}],
            '"match.regex" has a group named "name", which is already a conf field: '
            'rename the group (e.g. "name_part")',
        ),
        (
            [{"dag_id": "x", "match": {"attributes": {}}}],
            '"match.attributes" must be a non-empty object of attribute name to glob',
        ),
        (
            [{"dag_id": "x", "match": {"attributes": ["eventType"]}}],
            '"match.attributes" must be a non-empty object',
        ),
        (
            [{"dag_id": "x", "match": {"attributes": {"eventType": 1}}}],
            '"match.attributes.eventType" must be a string or a list of strings, not a number',
        ),
        ([{"dag_id": "x", "conf": "a=b"}], 'route #1: "conf" must be an object, not a string'),
        ([{"dag_id": "x", "replace_conf": 1}], 'must be true or false, not a number'),
        (
            [{"name": "n", "dag_id": "x", "conf": {"p": "{size:>10}"}}],
            'route "n": conf.p: "{size:>10}": format specs are not supported: {size:>10}',
        ),
        (
            [{"dag_id": "x", "conf": {"p": {"q": ["{name.__class__}"]}}}],
            'route #1: conf.p.q[0]: "{name.__class__}": names starting with "_" are not allowed',
        ),
        (
            [{"dag_id": "x", "conf": {"p": "{date}"}}],
            'route #1: conf.p: "{date}": unknown field "date" in {date}: use one of the fields attributes,',
        ),
        (
            [{"dag_id": "x", "match": {"regex": "(?P<day>.)"}, "conf": {"p": "{date}"}}],
            'unknown field "date" in {date}: use one of the fields attributes, bucket, content_type, data, '
            "data_encoding, day, detail,",
        ),
        (
            [{"name": "a", "dag_id": "x"}, {"name": "a", "dag_id": "y"}],
            'DAGTRIGGER_ROUTES: two routes are named "a": give each route its own name',
        ),
        (
            [{"dag_id": "x"}, {"name": "route-1", "dag_id": "y"}],
            'two routes are named "route-1"',
        ),
    ],
)  # fmt: skip
def test_a_bad_rule_is_refused_at_load(rules: Any, message: str) -> None:
    error = load_error(rules)
    assert message in error
    assert error.startswith("DAGTRIGGER_ROUTES: ")


def test_errors_name_the_source_the_rules_came_from() -> None:
    error = load_error([{"dag_id": ""}], source="gs://config/routes.json")
    assert error.startswith('gs://config/routes.json: route #1: "dag_id": the DAG id is empty')


def test_an_invalid_default_dag_id_is_refused() -> None:
    error = load_error([{"match": {}}], default_dag_id="bad id")
    assert error == (
        'DAG_ID (the DAG of routes without "dag_id"): "bad id" is not a valid DAG id: '
        'use only letters, digits, "_", "." and "-"'
    )


def test_templates_may_use_every_default_conf_field() -> None:
    documented = {
        "provider", "event_id", "event_type", "event_time",
        "bucket", "name", "uri", "size", "content_type", "etag", "version", "metadata",
        "message_id", "data", "attributes", "data_encoding",
        "source", "detail_type", "detail", "resources",
    }  # fmt: skip
    assert documented == DEFAULT_CONF_FIELDS


# --- Regexes run on RE2: linear in the length of the name, whatever the pattern

# The issue's pattern: Python's re takes x4 longer every two more path segments (0.9 s on a name
# of 49 characters, minutes past 60); object names are up to 1024 bytes and chosen by whoever may
# write to the bucket.
ISSUE_REGEX = r"^(?P<dir>(.*/)*)(?P<file>[^/]+)\.csv$"
FAST = 0.5  # seconds: generous for a slow CI, and far less than Python's re needs for any name here


def route_timed(router: Router, event: Event) -> Routing:
    started = time.perf_counter()
    routing = router.route(event)
    elapsed = time.perf_counter() - started
    assert elapsed < FAST, f"routing took {elapsed:.3f} s"
    return routing


@pytest.mark.parametrize(
    "name",
    ["a/" * 511 + "x", "/" * 1023 + "x", "a/" * 510 + ".csv", "a//" * 341 + "x", "é/" * 511 + "x"],
    ids=["a/-then-x", "slashes-then-x", "empty-file-name", "double-slashes", "two-byte-chars"],
)
def test_the_issue_regex_refuses_a_hostile_1024_character_name_in_milliseconds(name: str) -> None:
    router = Router.from_rules([{"dag_id": "d", "match": {"regex": ISSUE_REGEX}}])

    routing = route_timed(router, gcs_event(name=name))

    assert routing.triggers == ()


HOSTILE_1024 = "a" * 1023 + "!"


@pytest.mark.parametrize(
    ("match", "event"),
    [
        ({"regex": ISSUE_REGEX}, gcs_event(name="a/" * 509 + "x.csv\n")),
        ({"regex": r"^(a+)+$"}, gcs_event(name=HOSTILE_1024)),
        ({"regex": r"^(a|aa)*b"}, gcs_event(name=HOSTILE_1024)),
        ({"regex": r"(.*a){20}b"}, gcs_event(name=HOSTILE_1024)),
        ({"regex": r"^(\w+\s?)*$"}, gcs_event(name=HOSTILE_1024)),
        ({"glob": "*a*a*a*a*a*a*a*a*b"}, gcs_event(name=HOSTILE_1024)),
        ({"glob": ["*/*/*/*/*/*/*/*.csv", "*?*?*?*?*?*?*.json"]}, gcs_event(name="a/" * 512)),
        ({"attributes": {"k": "*a*a*a*a*a*a*a*a*b"}}, message_event(attributes={"k": HOSTILE_1024})),
    ],
    ids=["issue", "nested-plus", "overlapping-alternatives", "repeated-dot-star", "words",
         "multi-star-glob", "multi-star-globs", "attribute-glob"],
)  # fmt: skip
def test_a_pattern_that_backtracks_in_python_runs_in_linear_time(
    match: dict[str, Any], event: Event
) -> None:
    router = Router.from_rules([{"dag_id": "d", "match": match}])

    assert route_timed(router, event).triggers == ()


HOSTILE_ROUTES = [
    {"name": "prefix", "match": {"prefix": "a/"}, "dag_id": "by_prefix"},
    {"name": "suffix", "match": {"suffix": ".csv"}, "dag_id": "by_suffix"},
    {"name": "glob", "match": {"glob": "*/*/*/*/*/*/*/*/*.csv"}, "dag_id": "by_glob"},
    {
        "name": "regex",
        "match": {"regex": ISSUE_REGEX},
        "dag_id": "by_regex",
        "conf": {"dir": "{dir}", "file": "{file}"},
    },
]
EVERY_RULE = ["by_prefix", "by_suffix", "by_glob", "by_regex"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/" * 511 + "x", ["by_prefix"]),
        ("a/" * 509 + "x.csv", EVERY_RULE),
        ("a/" * 510 + ".csv", ["by_prefix", "by_suffix", "by_glob"]),  # no file name before .csv
        ("/" * 1023 + "x", []),
        ("/" * 1020 + ".csv", ["by_suffix", "by_glob"]),
        ("a/" * 509 + "x.csv\n", ["by_prefix"]),  # "$" is the end of the name, not before a \n
        ("é/" * 509 + "x.csv", ["by_suffix", "by_glob", "by_regex"]),
        ("\U0001f9e8/" * 339 + "x.csv", ["by_suffix", "by_glob", "by_regex"]),
        (".csv" * 256, ["by_suffix", "by_regex"]),
        ("a" * 1024, []),
        (LONG, ["by_suffix", "by_glob"]),
        (NEWLINES, ["by_suffix", "by_regex"]),  # [^/] takes line breaks, as in Python's re
        (UNICODE, ["by_suffix", "by_regex"]),
        (SHELL, ["by_suffix", "by_regex"]),
        (TEMPLATE, ["by_suffix", "by_regex"]),
        (TRAVERSAL, []),
    ],
    ids=["a/-then-x", "a/-then-file", "a/-then-.csv", "slashes", "slashes-then-.csv",
         "trailing-newline", "two-byte-chars", "emoji", "csv-repeated", "one-letter", "long",
         "newlines", "unicode", "shell", "template", "traversal"],
)  # fmt: skip
def test_hostile_names_meet_every_kind_of_rule_quickly_and_exactly(
    name: str, expected: list[str]
) -> None:
    router = Router.from_rules(HOSTILE_ROUTES)

    routing = route_timed(router, gcs_event(name=name))

    assert dags(routing) == expected
    for trigger in routing.triggers:
        assert trigger.conf["name"] == name
        if trigger.dag_id == "by_regex":
            assert trigger.conf["dir"] + trigger.conf["file"] + ".csv" == name


def test_groups_hold_whole_characters_of_a_unicode_name() -> None:
    router = Router.from_rules(
        [
            {
                "dag_id": "d",
                "match": {"regex": r"^(?P<first>.)(?P<area>\p{Han}+)/(?P<rest>.+)$"},
                "conf": {"first": "{first}", "area": "{area}", "rest": "{rest}"},
                "replace_conf": True,
            }
        ]
    )

    routing = router.route(gcs_event(name="\U0001f9e8日本語/café \u200b.csv"))

    assert routing.triggers[0].conf == {
        "first": "\U0001f9e8",
        "area": "日本語",
        "rest": "café \u200b.csv",
    }


def test_digit_and_word_classes_are_ascii_only() -> None:
    assert matches({"regex": r"^\d+/"}, gcs_event(name="2024/x.csv")) is True
    assert matches({"regex": r"^\d+/"}, gcs_event(name="\u0662\u0660\u0662\u0664/x.csv")) is False
    assert matches({"regex": r"^\w+\.csv$"}, gcs_event(name="café.csv")) is False
    assert matches({"regex": r"^[\pL\pN_]+\.csv$"}, gcs_event(name="café.csv")) is True


def test_a_name_that_is_not_valid_unicode_is_a_route_error_not_a_crash() -> None:
    router = Router.from_rules([{"name": "csv", "dag_id": "d", "match": {"regex": r"\.csv$"}}])

    with pytest.raises(RouteError) as caught:
        router.route(gcs_event(name="half\ud800pair.csv"))

    assert str(caught.value) == (
        "route \"csv\": the object name 'half\\ud800pair.csv' of gcs event 'evt-1' is not valid "
        'Unicode (surrogates not allowed), so "match.regex" cannot be searched in it; no real '
        "object has such a name"
    )


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"(?P<x>a)\1", r"invalid escape sequence: \1"),
        (r"(?P<x>a)(?P=x)", "invalid perl operator: (?P"),
        (r"\.csv(?=$)", "invalid perl operator: (?="),
        (r"(?<=sales/)x", "invalid perl operator: (?<="),
        (r"^(?!tmp/)", "invalid perl operator: (?!"),
        (r"(?>a+)b", "invalid perl operator: (?>"),
        (r"a++b", "bad repetition operator: ++"),
        (r"(a)?(?(1)b|c)", "invalid perl operator: (?("),
        (r"\.csv\Z", r"invalid escape sequence: \Z"),
        (r"(?x) a b", "invalid perl operator: (?x"),
        (r"a{1001}", "invalid repetition size: {1001}"),
    ],
    ids=["backreference", "named-backreference", "lookahead", "lookbehind", "negative-lookahead",
         "atomic-group", "possessive", "conditional", "python-end-of-text", "verbose-flag",
         "repetition-too-large"],
)  # fmt: skip
def test_syntax_re2_refuses_names_the_problem_and_what_routes_accept(
    pattern: str, problem: str, capfd: pytest.CaptureFixture[str]
) -> None:
    error = load_error([{"dag_id": "x", "match": {"regex": pattern}}])

    assert error == (
        f'DAGTRIGGER_ROUTES: route #1: "match.regex" is not a valid regular expression: {problem}. '
        "Routes use RE2 syntax: named groups as (?P<name>...); no backreferences, lookarounds, "
        r"atomic or possessive groups, or conditionals; \z, not \Z, for the end of the name; "
        r"\d, \w, \s and \b are ASCII-only."
    )
    assert capfd.readouterr().err == ""  # RE2 logs nothing of its own


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"^(?P<x>\C)", r'"match.regex" uses \C (one byte), which can cut a character in two: use'),
        (r"(?P<day>\d\d)|(?P<day>[a-z]+)", '"match.regex" has two groups named "day": give each'),
        (r"(?<day>\d\d)-(?P<day>\d\d)", '"match.regex" has two groups named "day"'),
        ("\ud800", '"match.regex" is not valid Unicode (surrogates not allowed at position 0)'),
    ],
    ids=["one-byte", "same-name-twice", "both-spellings", "lone-surrogate"],
)  # fmt: skip
def test_what_re2_accepts_but_routing_refuses(pattern: str, message: str) -> None:
    assert message in load_error([{"dag_id": "x", "match": {"regex": pattern}}])


@pytest.mark.parametrize(
    "pattern",
    [r"\\C", r"[\\]C", r"(?P<day>x)|\(?P<day>y\)"],
    ids=["escaped-backslash", "backslash-in-class", "escaped-paren"],
)
def test_text_that_only_looks_like_a_refused_construct_is_accepted(pattern: str) -> None:
    Router.from_rules([{"dag_id": "x", "match": {"regex": pattern}}])


def test_a_regex_without_google_re2_installed_names_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "re2", None)  # what a missing or foreign-arch wheel gives

    error = load_error([{"dag_id": "x", "match": {"regex": "[.]csv$"}}])

    assert error.startswith('DAGTRIGGER_ROUTES: route #1: "match.regex" needs google-re2')
    assert error.endswith(
        "pip install google-re2; on AWS Lambda, build the package for the function's "
        "Architecture (make package-aws ARCH=arm64 or ARCH=x86_64)"
    )


def test_re2_is_loaded_only_when_a_rule_has_a_regex() -> None:
    probe = """
import json, sys
sys.path.insert(0, "functions")
from dagtrigger.routing import Router
Router.from_rules([{"dag_id": "d", "match": {"glob": "*.csv", "prefix": "a/", "suffix": "x"}}])
before = "re2" in sys.modules
Router.from_rules([{"dag_id": "d", "match": {"regex": "[.]csv$"}}])
print(json.dumps([before, "re2" in sys.modules]))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout

    assert json.loads(out) == [False, True]
