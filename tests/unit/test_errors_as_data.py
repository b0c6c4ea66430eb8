"""Errors carry their meaning as data: `doctor` and the CLI read it, never the wording. Every
message reworded, doctor still reports the same checks, statuses and fixes, and the CLI exits
with the same codes (against a local stub of Airflow; test_doctor.py does it on real servers)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.doctor import Status, run_doctor
from dagtrigger.errors import DagTriggerError
from tests.unit.conftest import Result
from tests.unit.stub_airflow import Reply, StubAirflow, closed_port_url

pytestmark = pytest.mark.usefixtures("clean_env")

REWORDED = "reworded"
EXAMPLES = Path(__file__).parents[2] / "examples" / "events"
Finding = tuple[str, str | None, Status, str | None]  # check, subject, status, fix


def reword_every_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DagTriggerError made from now on says REWORDED where it said what went wrong."""
    made = DagTriggerError.__init__

    def reworded(self: DagTriggerError, problem: str, **fields: Any) -> None:
        made(self, REWORDED, **fields)

    monkeypatch.setattr(DagTriggerError, "__init__", reworded)


@pytest.fixture
def stub() -> Iterator[StubAirflow]:
    with StubAirflow() as server:
        yield server


def _jwt(stub: StubAirflow, token_reply: Reply) -> dict[str, str]:
    stub.always("GET", "/api/v2/version", Reply(200, {"version": "3.1.0"}))
    stub.always("POST", "/auth/token", token_reply)
    return {
        "AIRFLOW_URL": stub.url,
        "AIRFLOW_AUTH": "jwt",
        "AIRFLOW_USERNAME": "bot",
        "AIRFLOW_PASSWORD": "pw-Secret-9",
        "AIRFLOW_API_VERSION": "v2",
        "DAG_ID": "etl",
    }


def token_refused(stub: StubAirflow) -> dict[str, str]:
    return _jwt(stub, Reply(401, {"detail": "Invalid credentials"}))


def no_token_endpoint(stub: StubAirflow) -> dict[str, str]:
    return _jwt(stub, Reply(404, {"detail": "Not Found"}))


def token_endpoint_redirects(stub: StubAirflow) -> dict[str, str]:
    return _jwt(stub, Reply(302, None, {"Location": "https://login.example.com/"}))


def no_rest_api(stub: StubAirflow) -> dict[str, str]:
    return {"AIRFLOW_URL": stub.url, "AIRFLOW_TOKEN": "t0ken-value", "DAG_ID": "etl"}


def front_refuses_everything(stub: StubAirflow) -> dict[str, str]:
    refusal = Reply(401, {"detail": "Not authenticated"})
    stub.always("GET", "/api/v2/version", refusal)
    stub.always("GET", "/api/v2/dags", refusal)
    return {"AIRFLOW_URL": stub.url, "AIRFLOW_TOKEN": "t0ken-value", "DAG_ID": "etl"}


def nothing_listens(stub: StubAirflow) -> dict[str, str]:
    return {"AIRFLOW_URL": closed_port_url(), "AIRFLOW_TOKEN": "t0ken-value", "DAG_ID": "etl"}


# Each scenario and the line it must produce, whatever the wording: (check, status, fix start).
SCENARIOS: list[tuple[Callable[[StubAirflow], dict[str, str]], str, Status, str]] = [
    (token_refused, "authenticated", Status.FAIL, "check AIRFLOW_USERNAME and AIRFLOW_PASSWORD."),
    (no_token_endpoint, "authenticated", Status.FAIL, "this server is not Airflow 3"),
    (token_endpoint_redirects, "authenticated", Status.FAIL, "Set the URL to the address"),
    (no_rest_api, "api_version", Status.FAIL, "check AIRFLOW_URL points at the Airflow web"),
    (front_refuses_everything, "authenticated", Status.FAIL, "AIRFLOW_TOKEN was rejected"),
    (nothing_listens, "reachable", Status.FAIL, "check AIRFLOW_URL=http://127.0.0.1:"),
]


def _findings(env: dict[str, str]) -> list[Finding]:
    return [(r.name, r.subject, r.status, r.fix) for r in run_doctor(env)]


@pytest.mark.parametrize(
    ("scenario", "check", "status", "fix"), SCENARIOS, ids=[s[0].__name__ for s in SCENARIOS]
)
def test_rewording_every_message_changes_no_check_status_or_fix(
    stub: StubAirflow,
    monkeypatch: pytest.MonkeyPatch,
    scenario: Callable[[StubAirflow], dict[str, str]],
    check: str,
    status: Status,
    fix: str,
) -> None:
    env = scenario(stub)
    as_worded = _findings(env)
    reword_every_message(monkeypatch)
    reworded = run_doctor(env)

    assert [(r.name, r.subject, r.status, r.fix) for r in reworded] == as_worded
    [line] = [r for r in reworded if r.name == check]
    assert line.status is status
    assert line.fix is not None and line.fix.startswith(fix), line.fix


# Settings and routing rules doctor refuses before any request: (env, event, check, fix start).
SETTINGS_SCENARIOS: list[tuple[str, dict[str, str], Any, str, str]] = [
    ("url-not-http", {"AIRFLOW_URL": "ftp://x", "DAG_ID": "etl"}, None, "configuration",
     "set it to the server's base URL"),
    ("url-with-api-path", {"AIRFLOW_URL": "http://a/api/v1", "DAG_ID": "etl"}, None,
     "configuration", "set the base URL AIRFLOW_URL=http://a"),
    ("two-targets", {"AIRFLOW_URL": "http://a", "COMPOSER_ENVIRONMENT":
     "projects/p/locations/l/environments/e", "DAG_ID": "etl"}, None, "configuration",
     "set only COMPOSER_ENVIRONMENT"),
    ("number-out-of-range", {"AIRFLOW_URL": "http://a", "DAG_ID": "etl",
     "DAGTRIGGER_CONCURRENCY": "0"}, None, "configuration", "e.g. DAGTRIGGER_CONCURRENCY="),
    ("unknown-route-key", {"AIRFLOW_URL": "http://a", "DAGTRIGGER_ROUTES":
     '[{"dag_id": "etl", "matsch": {}}]'}, None, "routing", "use only name, match"),
    ("bad-template", {"AIRFLOW_URL": "http://a", "DAGTRIGGER_ROUTES":
     '[{"dag_id": "etl", "conf": {"d": "{size:>3}"}}]'}, None, "routing",
     "write placeholders as {field}"),
    ("field-the-event-lacks", {"AIRFLOW_URL": "http://a", "DAGTRIGGER_ROUTES":
     '[{"dag_id": "etl", "conf": {"t": "{metadata.team}"}}]'},
     json.loads((EXAMPLES / "gcs_finalized.json").read_text()), "routing",
     "narrow the route's match"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("env", "event", "check", "fix"),
    [s[1:] for s in SETTINGS_SCENARIOS],
    ids=[s[0] for s in SETTINGS_SCENARIOS],
)
def test_rewording_settings_and_routing_errors_changes_no_check_status_or_fix(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], event: Any, check: str, fix: str
) -> None:
    as_worded = [(r.name, r.subject, r.status, r.fix) for r in run_doctor(env, event=event)]
    reword_every_message(monkeypatch)
    reworded = run_doctor(env, event=event)

    assert [(r.name, r.subject, r.status, r.fix) for r in reworded] == as_worded
    [line] = [r for r in reworded if r.name == check]
    assert line.status is Status.FAIL
    assert line.fix is not None and line.fix.startswith(fix), line.fix
    assert REWORDED in line.message


def test_the_rewording_reaches_what_doctor_quotes(
    stub: StubAirflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = token_refused(stub)
    reword_every_message(monkeypatch)

    [authenticated] = [r for r in run_doctor(env) if r.name == "authenticated"]

    assert authenticated.message == REWORDED


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply(404, {"detail": "DAG with dag_id: 'etl' not found"}), 1),
        (Reply(422, {"detail": "conf: 'date' is required"}), 1),
        (Reply(403, {"detail": "Forbidden"}), 1),
        (Reply(307, None, {"Location": "https://elsewhere.example.com/"}), 2),
        (Reply(503, b"Service Unavailable"), 75),
    ],
    ids=["dag-not-found", "conf-rejected", "forbidden", "redirect", "server-error"],
)
def test_the_cli_exit_code_comes_from_the_error_not_its_words(
    cli: Callable[..., Result],
    stub: StubAirflow,
    monkeypatch: pytest.MonkeyPatch,
    reply: Reply,
    code: int,
) -> None:
    stub.always("POST", "/api/v2/dags/etl/dagRuns", reply)
    for name, value in {
        "AIRFLOW_URL": stub.url,
        "AIRFLOW_TOKEN": "t0ken-value",
        "AIRFLOW_API_VERSION": "v2",
        "DAGTRIGGER_DEADLINE": "0.5",
    }.items():
        monkeypatch.setenv(name, value)

    as_worded = cli("trigger", "etl")
    reword_every_message(monkeypatch)
    reworded = cli("trigger", "etl")

    assert as_worded[0] == reworded[0] == code
    [said], [says] = as_worded[2], reworded[2]
    assert says.startswith(f"dagtrigger: error: {REWORDED}")
    assert not said.startswith(f"dagtrigger: error: {REWORDED}")
