"""The doctor's checklist as printed, its JSON, its exit code, and how checks depend on each other."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from dagtrigger.doctor.context import strip_api_prefix
from dagtrigger.doctor.model import CheckResult, Outcome, Status, fail, ok, warn
from dagtrigger.doctor.report import (
    ASCII_SYMBOLS,
    can_encode,
    exit_code,
    format_checklist,
    format_json,
)
from dagtrigger.doctor.runner import Checklist

HEALTHY = [
    CheckResult("configuration", None, Status.OK, "Airflow at http://a; auth: basic"),
    CheckResult("reachable", None, Status.OK, "http://a answered HTTP 200"),
    CheckResult("dag.exists", "load_sales", Status.OK, "defined in /dags/sales.py"),
]
BROKEN = [
    CheckResult("configuration", None, Status.OK, "Airflow at http://a; auth: basic"),
    CheckResult(
        "reachable", None, Status.FAIL, "a:80 refused the connection", "check AIRFLOW_URL=http://a"
    ),
    CheckResult("api_version", None, Status.SKIP, "skipped: needs web server reachable"),
    CheckResult(
        "dag.unpaused",
        "load_sales",
        Status.WARN,
        "paused: runs will wait, queued",
        "dagtrigger api PATCH /dags/load_sales --data '{\"is_paused\": false}'",
    ),
]


def test_a_healthy_checklist_is_all_ticks_and_says_it_is_ready() -> None:
    assert format_checklist(HEALTHY).splitlines() == [
        "✔ configuration: Airflow at http://a; auth: basic",
        "✔ web server reachable: http://a answered HTTP 200",
        "✔ DAG load_sales exists: defined in /dags/sales.py",
        "",
        "Ready: nothing stops the function from triggering runs (0 warnings).",
    ]
    assert exit_code(HEALTHY) == 0


def test_each_problem_is_followed_by_its_fix_and_skipped_checks_by_none() -> None:
    assert format_checklist(BROKEN).splitlines() == [
        "✔ configuration: Airflow at http://a; auth: basic",
        "✘ web server reachable: a:80 refused the connection",
        "    fix: check AIRFLOW_URL=http://a",
        "- API version: skipped: needs web server reachable",
        "! DAG load_sales unpaused: paused: runs will wait, queued",
        "    fix: dagtrigger api PATCH /dags/load_sales --data '{\"is_paused\": false}'",
        "",
        "1 problem and 1 warning: the function cannot trigger runs until the ✘ lines are fixed.",
    ]
    assert exit_code(BROKEN) == 1


def test_warnings_alone_exit_zero() -> None:
    assert exit_code([*HEALTHY, BROKEN[-1]]) == 0


def test_a_terminal_that_cannot_show_the_symbols_gets_words() -> None:
    assert can_encode("utf-8") and not can_encode("ascii") and not can_encode(None)
    text = format_checklist(BROKEN, ASCII_SYMBOLS)
    assert "FAIL web server reachable:" in text and "until the FAIL lines are fixed" in text
    text.encode("ascii")


def test_json_holds_every_check_with_name_status_message_and_fix() -> None:
    document = json.loads(format_json(BROKEN))
    assert document["ok"] is False
    assert [c["name"] for c in document["checks"]] == [
        "configuration",
        "reachable",
        "api_version",
        "dag.unpaused",
    ]
    assert document["checks"][1] == {
        "name": "reachable",
        "subject": None,
        "status": "fail",
        "message": "a:80 refused the connection",
        "fix": "check AIRFLOW_URL=http://a",
    }
    assert document["checks"][3]["subject"] == "load_sales"
    assert json.loads(format_json(HEALTHY))["ok"] is True


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/dags", "/dags"),
        ("dags", "/dags"),
        ("/api/v1/dags", "/dags"),
        ("/api/v2/variables/k", "/variables/k"),
        ("/api/experimental/test", "/test"),
        ("/api/v2", "/"),
        ("/api/v20/x", "/api/v20/x"),
        ("/dags?limit=5", "/dags?limit=5"),
    ],
)
def test_the_api_prefix_is_optional_in_paths(path: str, expected: str) -> None:
    assert strip_api_prefix(path) == expected


def test_a_check_whose_prerequisite_failed_is_skipped_and_names_it() -> None:
    checks = Checklist()
    calls: list[str] = []

    def check(outcome: Outcome) -> Callable[[], Outcome]:
        def run() -> Outcome:
            calls.append(outcome.message)
            return outcome

        return run

    checks.run("configuration", check(ok("fine")))
    checks.run("reachable", check(fail("refused", "start it")), requires=("configuration",))
    checks.run("api_version", check(ok("v2")), requires=("reachable",))
    checks.run("dag.unpaused", check(warn("paused", "unpause")), subject="d")
    checks.run("dag.params", check(ok("fits")), subject="d", requires=("dag.unpaused:d",))

    assert calls == ["fine", "refused", "paused", "fits"], "a warning does not block"
    skipped = checks.results[2]
    assert (
        skipped.status is Status.SKIP and skipped.message == "skipped: needs web server reachable"
    )


def test_a_check_that_raises_becomes_one_failed_line_not_a_traceback() -> None:
    from dagtrigger.errors import ConfigurationError

    checks = Checklist()

    def broken() -> Outcome:
        raise ConfigurationError(
            "AIRFLOW_SECRET_ARN=arn:x cannot be read (denied)", fix="check it exists"
        )

    def buggy() -> Outcome:
        raise KeyError("WebserverUrl")

    checks.run("credentials", broken)
    checks.run("environment", buggy)
    first, second = checks.results
    assert (first.status, first.message, first.fix) == (
        Status.FAIL,
        "AIRFLOW_SECRET_ARN=arn:x cannot be read (denied)",
        "check it exists",
    )
    assert second.status is Status.FAIL and second.message == "unexpected KeyError: 'WebserverUrl'"


def test_a_raised_error_that_carries_its_fix_is_reported_as_it_carries_it() -> None:
    from dagtrigger.errors import AuthorizationError

    checks = Checklist()

    def refused() -> Outcome:
        raise AuthorizationError(
            "MWAA refused the call (no role): see below", fix='Allow {"Action": "x"} on the role'
        )

    checks.run("authenticated", refused)
    [result] = checks.results
    assert (result.status, result.message, result.fix) == (
        Status.FAIL,
        "MWAA refused the call (no role): see below",
        'Allow {"Action": "x"} on the role',
    )
