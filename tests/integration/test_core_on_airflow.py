"""The core against real Airflow 2 and 3: every event kind, idempotency, routing, auth, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.auth import Token
from dagtrigger.dispatch import Dispatcher
from dagtrigger.errors import (
    ApiVersionError,
    AuthenticationError,
    AuthorizationError,
    ConfRejectedError,
    DagNotFoundError,
)
from dagtrigger.runtime import build_client
from dagtrigger.settings import Settings
from tests.integration.helpers import (
    airflow_env,
    count_runs,
    drop_queued_runs,
    read_run,
    wait_for_state,
)
from tools.local_airflow import LocalAirflow

pytestmark = pytest.mark.airflow

EVENTS = Path(__file__).resolve().parent.parent / "events"
EVENT_FILES = sorted(p for p in EVENTS.glob("*.json") if not p.name.endswith(".expected.json"))
REPO = Path(__file__).resolve().parents[2]


def _expected_confs(event_file: Path) -> list[dict[str, Any]]:
    expected = json.loads(event_file.with_suffix(".expected.json").read_text())
    return [event["conf"] for event in expected["events"]]


def _gcs_event(name: str, generation: str = "1") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": "google.cloud.storage.object.v1.finalized",
        "source": "//storage.googleapis.com/projects/_/buckets/acme-landing",
        "subject": f"objects/{name}",
        "id": f"evt-{generation}",
        "time": "2024-06-01T06:15:02.437Z",
        "data": {
            "bucket": "acme-landing",
            "name": name,
            "generation": generation,
            "size": "42",
            "contentType": "text/csv",
        },
    }


@pytest.mark.parametrize("event_file", EVENT_FILES, ids=lambda p: p.stem)
def test_each_event_kind_starts_one_run_with_the_documented_conf_however_often_it_arrives(
    airflow: LocalAirflow, make_dispatcher: Callable[..., Dispatcher], event_file: Path
) -> None:
    payload = json.loads(event_file.read_text())
    dispatcher = make_dispatcher()
    runs_before = count_runs(airflow, "dagtrigger_example")

    first, *redeliveries = [dispatcher.handle(payload) for _ in range(3)]

    assert not first.transient_errors and not first.permanent_errors
    assert [run.conf for run in first.plan.runs] == _expected_confs(event_file)
    # Some samples are the same S3 event in another envelope: those are duplicates already.
    created = first.count("created")
    assert created + first.count("duplicate") == len(first.plan.runs)
    for report in redeliveries:
        assert [o.outcome for o in report.outcomes] == ["duplicate"] * len(first.plan.runs)
    assert count_runs(airflow, "dagtrigger_example") == runs_before + created
    for outcome in first.outcomes:
        stored = read_run(airflow, outcome.run.dag_id, outcome.run.dag_run_id)
        assert stored is not None, outcome.run.dag_run_id
        if outcome.outcome == "created":  # a duplicate keeps the conf of its first envelope
            assert stored["conf"] == json.loads(json.dumps(dict(outcome.run.conf)))
    if not first.plan.runs:
        assert first.plan.ignored, "an event that starts no run must say why"


def test_the_same_s3_event_through_four_envelopes_starts_one_run(
    airflow: LocalAirflow, make_dispatcher: Callable[..., Dispatcher]
) -> None:
    dispatcher = make_dispatcher()
    envelopes = ["s3_put", "sqs_s3_notification", "sqs_sns_s3_notification"]
    run_ids = set()
    for name in envelopes:
        report = dispatcher.handle(json.loads((EVENTS / f"{name}.json").read_text()))
        run_ids |= {o.run.dag_run_id for o in report.outcomes if "orders.csv" in o.run.event.label}
        assert not report.permanent_errors and not report.transient_errors
    assert len(run_ids) == 1
    assert read_run(airflow, "dagtrigger_example", run_ids.pop()) is not None


def test_the_task_runs_and_reads_a_hostile_object_name_safely(
    airflow: LocalAirflow, make_dispatcher: Callable[..., Dispatcher], tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    name = f"incoming/$(touch {marker}).csv"
    drop_queued_runs(airflow, "dagtrigger_example")
    status, body = airflow.call("PATCH", "/dags/dagtrigger_example", {"is_paused": False})
    assert status == 200, body
    try:
        report = make_dispatcher().handle(_gcs_event(name, generation="777"))
        (outcome,) = report.outcomes
        assert outcome.outcome == "created"
        run_id = outcome.run.dag_run_id
        assert (
            wait_for_state(airflow, "dagtrigger_example", run_id, ("success", "failed"))
            == "success"
        )
    finally:
        airflow.call("PATCH", "/dags/dagtrigger_example", {"is_paused": True})

    status, xcom = airflow.call(
        "GET",
        f"/dags/dagtrigger_example/dagRuns/{run_id}/taskInstances/describe_event/xcomEntries/return_value",
    )
    assert status == 200, xcom
    seen = json.loads(xcom["value"])
    assert seen["uri"] == f"gs://acme-landing/{name}"
    assert seen["provider"] == "gcs" and seen["size"] == 42
    assert not marker.exists(), "the object name reached a shell as code"


def test_routes_start_several_dags_with_values_taken_from_the_path(
    airflow: LocalAirflow, make_dispatcher: Callable[..., Dispatcher]
) -> None:
    routes = [
        {
            "name": "sales",
            "match": {"provider": "gcs", "regex": r"^sales/(?P<day>\d{4}-\d{2}-\d{2})/.*\.csv$"},
            "dag_id": "dagtrigger_sales",
            "conf": {"partition": "{day}", "source_uri": "{uri}", "bytes": "{size}"},
        },
        {"name": "audit", "match": {"bucket": "acme-*"}, "dag_id": "dagtrigger_example"},
    ]
    dispatcher = make_dispatcher(DAGTRIGGER_ROUTES=json.dumps(routes), DAG_ID="")
    report = dispatcher.handle(_gcs_event("sales/2024-06-02/orders.csv", generation="31"))

    by_dag = {o.run.dag_id: o for o in report.outcomes}
    assert set(by_dag) == {"dagtrigger_sales", "dagtrigger_example"}
    assert all(o.outcome == "created" for o in report.outcomes)
    sales = read_run(airflow, "dagtrigger_sales", by_dag["dagtrigger_sales"].run.dag_run_id)
    assert sales is not None
    assert sales["conf"]["partition"] == "2024-06-02"
    assert sales["conf"]["bytes"] == 42
    assert sales["conf"]["source_uri"] == "gs://acme-landing/sales/2024-06-02/orders.csv"

    unmatched = dispatcher.handle(
        {**_gcs_event("x.csv", "32"), "source": "//storage.googleapis.com/projects/_/buckets/other"}
        | {"data": {"bucket": "other", "name": "x.csv", "generation": "32"}}
    )
    assert unmatched.outcomes == () and "no route matched" in unmatched.plan.ignored[0]


def test_username_and_password_pick_basic_on_airflow2_and_a_cached_jwt_on_airflow3(
    airflow: LocalAirflow,
) -> None:
    client = build_client(Settings.from_env(airflow_env(airflow)))
    assert client.api_version == ("v2" if airflow.major == "3" else "v1")
    for generation in range(100, 105):
        run_id = f"auth-check-{airflow.major}-{generation}"
        assert client.trigger("dagtrigger_example", run_id, {"n": generation}).outcome == "created"
    auth: Any = client.transport.auth
    if airflow.major == "3":
        assert type(auth).__name__ == "AirflowJwtAuth"
        assert auth.fetch_count == 1, "warm triggers must reuse the token"
        auth._token = Token(
            "expired-or-revoked", None
        )  # what a token past its exp looks like to us
        assert client.trigger("dagtrigger_example", "auth-check-renewed", {}).outcome == "created"
        assert auth.fetch_count == 2, "a rejected token is renewed exactly once"
    else:
        assert type(auth).__name__ == "BasicAuth"


def test_a_static_bearer_token_works_on_airflow3(airflow: LocalAirflow) -> None:
    if airflow.major != "3":
        pytest.skip("Airflow 2 has no bearer tokens of its own")
    env = airflow_env(
        airflow, AIRFLOW_USERNAME="", AIRFLOW_PASSWORD="", AIRFLOW_TOKEN=airflow.token()
    )
    client = build_client(Settings.from_env(env))
    assert client.trigger("dagtrigger_example", "bearer-check", {"k": "v"}).outcome == "created"
    assert read_run(airflow, "dagtrigger_example", "bearer-check")["conf"] == {"k": "v"}  # type: ignore[index]


def test_a_wrong_password_is_a_permanent_error_that_says_what_to_check(
    airflow: LocalAirflow,
) -> None:
    env = airflow_env(airflow, AIRFLOW_PASSWORD="not-the-password", DAGTRIGGER_DEADLINE="5")
    client = build_client(Settings.from_env(env))
    with pytest.raises((AuthenticationError, AuthorizationError)) as caught:
        client.trigger("dagtrigger_example", "never-created", {})
    message = str(caught.value)
    assert "AIRFLOW_PASSWORD" in message or "AIRFLOW_USERNAME" in message
    assert "not-the-password" not in message


def test_a_user_without_permission_gets_the_role_to_grant(airflow: LocalAirflow) -> None:
    env = airflow_env(airflow, AIRFLOW_USERNAME="viewer", AIRFLOW_PASSWORD=airflow.viewer_password)
    client = build_client(Settings.from_env(env))
    with pytest.raises(AuthorizationError) as caught:
        client.trigger("dagtrigger_example", "viewer-run", {})
    assert "'viewer'" in str(caught.value) and "role" in str(caught.value)
    assert read_run(airflow, "dagtrigger_example", "viewer-run") is None


def test_a_missing_dag_names_the_dag_and_the_checks(airflow: LocalAirflow) -> None:
    client = build_client(Settings.from_env(airflow_env(airflow)))
    with pytest.raises(DagNotFoundError) as caught:
        client.trigger("no_such_dag", "x", {})
    assert "'no_such_dag'" in str(caught.value) and "import errors" in str(caught.value)


def test_a_conf_the_dag_params_reject_is_a_permanent_error(airflow: LocalAirflow) -> None:
    client = build_client(Settings.from_env(airflow_env(airflow)))
    with pytest.raises(ConfRejectedError) as caught:
        client.trigger("dagtrigger_strict", "bad-partition", {"partition": "June"})
    assert "dagtrigger_strict" in str(caught.value)
    ok = client.trigger("dagtrigger_strict", "good-partition", {"partition": "2024-06-01"})
    assert ok.outcome == "created"


def test_api_v1_against_airflow3_says_to_use_v2(airflow: LocalAirflow) -> None:
    if airflow.major != "3":
        pytest.skip("only Airflow 3 has removed /api/v1")
    client = build_client(
        Settings.from_env(airflow_env(airflow, AIRFLOW_API_VERSION="v1", AIRFLOW_AUTH="jwt"))
    )
    with pytest.raises(ApiVersionError) as caught:
        client.trigger("dagtrigger_example", "v1-run", {})
    assert "AIRFLOW_API_VERSION=v2" in str(caught.value)


def _cli(airflow: LocalAirflow, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "dagtrigger"), *args],
        env={"PATH": "/usr/bin:/bin", **airflow_env(airflow), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_send_reports_created_then_duplicate(airflow: LocalAirflow) -> None:
    event = str(EVENTS / "pubsub_json.json")
    first = _cli(airflow, "send", event, "--dag-id", "dagtrigger_sales")
    again = _cli(airflow, "send", event, "--dag-id", "dagtrigger_sales")
    assert first.returncode == 0, first.stderr
    assert [json.loads(line)["outcome"] for line in first.stdout.splitlines()] in (
        ["created"],
        ["duplicate"],
    )
    (line,) = again.stdout.splitlines()
    assert json.loads(line)["outcome"] == "duplicate" and again.returncode == 0


def test_cli_trigger_waits_for_the_run_to_finish(airflow: LocalAirflow) -> None:
    drop_queued_runs(airflow, "dagtrigger_sales")
    airflow.call("PATCH", "/dags/dagtrigger_sales", {"is_paused": False})
    try:
        done = _cli(
            airflow,
            "trigger",
            "dagtrigger_sales",
            "--conf",
            '{"partition": "2024-06-03"}',
            "--run-id",
            f"batch-2024-06-03-{airflow.major}",
            "--wait",
            "--poll",
            "1",
        )
    finally:
        airflow.call("PATCH", "/dags/dagtrigger_sales", {"is_paused": True})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["state"] == "success"


def test_api_v2_against_airflow2_says_there_is_no_v2_not_that_the_dag_is_missing(
    airflow_servers: dict[str, LocalAirflow],
) -> None:
    airflow = airflow_servers["2"]
    client = build_client(
        Settings.from_env(airflow_env(airflow, AIRFLOW_API_VERSION="v2", AIRFLOW_AUTH="basic"))
    )
    with pytest.raises(ApiVersionError) as caught:
        client.trigger("dagtrigger_example", "v2-run", {})
    assert "has no v2 API" in str(caught.value)
    assert "set v1 for Airflow 2" in str(caught.value)
