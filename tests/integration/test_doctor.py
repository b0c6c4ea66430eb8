"""`dagtrigger doctor` and `dagtrigger api` against real Airflow 2 and 3, directly and through the
Google and MWAA stand-ins, in the states users actually break their deployments into.

Each test runs the command as a user would (in-process through `cli.main`, one as the installed
console script) and asserts the checklist line and the fix the user would read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dagtrigger import runtime
from dagtrigger.cli import main
from dagtrigger.errors import DagTriggerError
from tests.integration.helpers import count_runs, drop_queued_runs
from tests.standins.google_composer import (
    ENVIRONMENT,
    IAP_CLIENT_ID,
    SERVICE_ACCOUNT,
    UNREACHABLE_ENVIRONMENT,
    Google,
)
from tests.standins.mwaa import MwaaEnvironment, MwaaStandin
from tools.local_airflow import REPO, LocalAirflow, free_port

pytestmark = pytest.mark.airflow

EVENT = REPO / "examples" / "events" / "gcs_finalized.json"  # sales/2024-06-01/orders.csv
MWAA_VERSIONS = {"2": "2.10.3", "3": "3.0.6"}
MWAA_ENV = "dagtrigger-doctor"
_CLEARED = (
    "AIRFLOW_URL", "AIRFLOW_AUTH", "AIRFLOW_USERNAME", "AIRFLOW_PASSWORD", "AIRFLOW_TOKEN",
    "AIRFLOW_API_VERSION", "AIRFLOW_SECRET_ARN", "DAG_ID", "DAGTRIGGER_ROUTES",
    "COMPOSER_ENVIRONMENT", "COMPOSER_API_ENDPOINT", "IAP_CLIENT_ID", "MWAA_ENVIRONMENT",
    "MWAA_AIRFLOW_ROLE", "GOOGLE_APPLICATION_CREDENTIALS", "AWS_PROFILE", "AWS_SESSION_TOKEN",
)  # fmt: skip


@dataclass
class Run:
    """What the user sees: the exit code and the lines printed."""

    code: int
    out: str
    err: str

    def line(self, label: str) -> str:
        """The checklist line for `label` ("authenticated", "DAG x exists", ...), with its fix."""
        lines = self.out.splitlines()
        for index, text in enumerate(lines):
            if text[2:].startswith(f"{label}:"):
                fix = lines[index + 1] if index + 1 < len(lines) else ""
                return text + ("\n" + fix if fix.startswith("    fix: ") else "")
        raise AssertionError(f"no line for {label!r} in:\n{self.out}")


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., Run]]:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str, **env: str) -> Run:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    runtime.reset()
    yield run
    runtime.reset()


def _direct(airflow: LocalAirflow, **overrides: str) -> dict[str, str]:
    env = {
        "AIRFLOW_URL": airflow.url,
        "AIRFLOW_USERNAME": "admin",
        "AIRFLOW_PASSWORD": airflow.admin_password,
        "DAG_ID": "dagtrigger_example",
    }
    env.update(overrides)
    return env


class _Unpaused:
    """Unpause a DAG for one test (after dropping runs others left queued); pause it again."""

    def __init__(self, airflow: LocalAirflow, dag_id: str) -> None:
        self.airflow, self.dag_id = airflow, dag_id

    def __enter__(self) -> None:
        drop_queued_runs(self.airflow, self.dag_id)
        status, body = self.airflow.call("PATCH", f"/dags/{self.dag_id}", {"is_paused": False})
        assert status == 200, body

    def __exit__(self, *_: object) -> None:
        self.airflow.call("PATCH", f"/dags/{self.dag_id}", {"is_paused": True})


# ---- self-hosted Airflow 2 and 3 ----


def test_a_healthy_deployment_passes_every_check_and_the_write_probe_starts_no_run(
    airflow: LocalAirflow, cli: Callable[..., Run]
) -> None:
    with _Unpaused(airflow, "dagtrigger_example"):
        before = count_runs(airflow, "dagtrigger_example")
        run = cli("doctor", "--write-check", **_direct(airflow))
        after = count_runs(airflow, "dagtrigger_example")

    assert run.code == 0, run.out
    checklist = run.out.split("\n\n")[0].splitlines()
    assert all(line.startswith("✔ ") for line in checklist), run.out
    assert f"Airflow {airflow.version}, REST API /api/{'v2' if airflow.major == '3' else 'v1'}" in (
        run.line("API version")
    )
    role = "roles: Admin" if airflow.major == "2" else "role: admin (in the JWT Airflow issued)"
    assert role in run.line("authenticated")
    assert "may trigger runs" in run.line("may trigger dagtrigger_example")
    assert after == before, "the write probe must not start a run"
    assert run.out.rstrip().endswith(
        "Ready: nothing stops the function from triggering runs (0 warnings)."
    )


def test_a_paused_dag_warns_that_runs_will_queue_and_its_fix_unpauses_it(
    airflow: LocalAirflow, cli: Callable[..., Run]
) -> None:
    run = cli("doctor", **_direct(airflow, DAG_ID="dagtrigger_sales"))
    assert run.code == 0, "a paused DAG still takes runs: a warning, not a failure"
    line = run.line("DAG dagtrigger_sales unpaused")
    assert line.startswith(
        "! DAG dagtrigger_sales unpaused: paused: the runs dagtrigger starts will wait, queued"
    )
    fix = line.splitlines()[1].removeprefix("    fix: ")
    command = fix.split(" (or: ")[0]
    assert command == "dagtrigger api PATCH /dags/dagtrigger_sales --data '{\"is_paused\": false}'"

    drop_queued_runs(airflow, "dagtrigger_sales")
    try:
        assert (
            cli("api", "PATCH", "/dags/dagtrigger_sales", "--data", '{"is_paused": false}').code
            == 0
        )
        again = cli("doctor", **_direct(airflow, DAG_ID="dagtrigger_sales"))
    finally:
        airflow.call("PATCH", "/dags/dagtrigger_sales", {"is_paused": True})
    assert (
        again.line("DAG dagtrigger_sales unpaused") == "✔ DAG dagtrigger_sales unpaused: not paused"
    )


def _wait_for_import_error(airflow: LocalAirflow, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = airflow.call("GET", "/importErrors")
        if status == 200 and any(name in e["filename"] for e in body["import_errors"]):
            return
        time.sleep(1)
    raise AssertionError(f"Airflow {airflow.version} recorded no import error for {name}")


def test_a_dag_whose_file_fails_to_import_names_the_file_and_the_error(
    airflow: LocalAirflow, cli: Callable[..., Run]
) -> None:
    _wait_for_import_error(airflow, "dagtrigger_broken.py")
    run = cli("doctor", **_direct(airflow, DAG_ID="dagtrigger_broken"))

    assert run.code == 1
    assert run.line("DAG dagtrigger_broken exists").startswith(
        "✘ DAG dagtrigger_broken exists: not found"
    )
    parses = run.line("DAG dagtrigger_broken parses")
    assert parses.startswith("✘ DAG dagtrigger_broken parses: ")
    assert "dagtrigger_broken.py" in parses
    assert "ModuleNotFoundError: No module named 'dagtrigger_helpers_not_installed'" in parses
    assert "    fix: fix " in parses and "dagtrigger api GET /importErrors" in parses
    # Every other example DAG still parses: the three DAG_ID examples and the asset consumer, and
    # on Airflow 3.3 the partitioned daily DAG.
    visible = 5 if airflow.major == "3" else 4
    assert f"may read DAGs ({visible} visible)" in run.line("authenticated"), "others still parse"


def _fresh_event(tmp_path: Path) -> Path:
    """The example event as a new generation of its object: a run id no other test has used."""
    event = json.loads(EVENT.read_text())
    event["data"]["generation"] = event["id"] = str(time.time_ns())
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return path


def test_params_that_reject_the_conf_are_caught_before_airflow_refuses_the_run(
    airflow: LocalAirflow, cli: Callable[..., Run], tmp_path: Path
) -> None:
    env = _direct(airflow, DAG_ID="dagtrigger_strict")
    event = _fresh_event(tmp_path)
    run = cli("doctor", "--event", str(event), **env)

    assert run.code == 1
    params = run.line("DAG dagtrigger_strict params")
    assert params.startswith(
        "✘ DAG dagtrigger_strict params: Airflow would refuse the conf of run gcs__finalized__"
    )
    assert "partition: the conf has no 'partition' and the param has no default" in params
    assert '"conf": {"partition": "{FIELD}"}' in params
    assert run.line("run of dagtrigger_strict").startswith(
        "✔ run of dagtrigger_strict: run id gcs__finalized__acme-landing_sales_2024-06-01"
    )
    # Airflow agrees: the same event sent for real is refused for the same reason.
    sent = cli("send", str(event), **env)
    assert sent.code == 1 and "rejected" in sent.out and "partition" in sent.out

    wrong_format = json.dumps([{"dag_id": "dagtrigger_strict", "conf": {"partition": "{name}"}}])
    run = cli("doctor", "--event", str(EVENT), DAGTRIGGER_ROUTES=wrong_format, DAG_ID="")
    assert "partition: 'sales/2024-06-01/orders.csv' does not match ^\\d{4}-\\d{2}-\\d{2}$" in (
        run.line("DAG dagtrigger_strict params")
    )

    dated = json.dumps([{"name": "sales", "match": {"regex": r"^sales/(?P<day>[^/]+)/"},
                         "dag_id": "dagtrigger_strict", "conf": {"partition": "{day}"}}])  # fmt: skip
    run = cli("doctor", "--event", str(EVENT), DAGTRIGGER_ROUTES=dated)
    assert run.line("DAG dagtrigger_strict params") == (
        "✔ DAG dagtrigger_strict params: the conf of 1 planned run fits its params (partition)"
    )
    assert run.line("routing").startswith(
        "✔ routing: 1 run from DAGTRIGGER_ROUTES (inline JSON): 'sales' → dagtrigger_strict"
    )
    assert '"partition": "2024-06-01"' in run.line("run of dagtrigger_strict")


def test_without_jsonschema_the_params_check_warns_and_names_the_install(
    airflow: LocalAirflow, cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    run = cli("doctor", "--event", str(EVENT), **_direct(airflow, DAG_ID="dagtrigger_strict"))

    assert run.code == 0, "nothing found wrong: a warning, not a failure"
    params = run.line("DAG dagtrigger_strict params")
    assert params.startswith("! DAG dagtrigger_strict params: ")
    assert "param partition: jsonschema is not installed: pip install 'dagtrigger[cli]'" in params


def test_the_wrong_api_version_names_the_one_to_set(
    airflow: LocalAirflow, cli: Callable[..., Run]
) -> None:
    wrong, right = ("v1", "v2") if airflow.major == "3" else ("v2", "v1")
    run = cli("doctor", **_direct(airflow, AIRFLOW_API_VERSION=wrong))

    assert run.code == 1
    line = run.line("API version")
    assert line.startswith(
        f"✘ API version: {airflow.url} has no /api/{wrong} (GET /api/{wrong}/version answered 404"
    )
    if airflow.major == "3":
        assert "/api/v1 has been removed in Airflow 3" in line
    assert line.endswith(
        f"    fix: set AIRFLOW_API_VERSION={right}, or unset it to detect the version"
    )
    assert run.line("authenticated") == "- authenticated: skipped: needs API version"


def test_a_user_without_a_role_that_may_trigger_fails_the_write_probe(
    airflow: LocalAirflow, cli: Callable[..., Run]
) -> None:
    env = _direct(airflow, AIRFLOW_USERNAME="viewer", AIRFLOW_PASSWORD=airflow.viewer_password)
    run = cli("doctor", "--write-check", **env)

    assert run.code == 1
    assert run.line("authenticated").startswith("✔ authenticated:"), "a Viewer may read DAGs"
    line = run.line("may trigger dagtrigger_example")
    assert line.startswith("✘ may trigger dagtrigger_example: ")
    assert "refused" in line and "permission to trigger DAG dagtrigger_example (403" in line
    assert "'viewer' has a role that may trigger" in line


def test_json_output_holds_every_check(airflow: LocalAirflow, cli: Callable[..., Run]) -> None:
    run = cli("doctor", "--json", **_direct(airflow, DAG_ID="dagtrigger_broken"))
    document = json.loads(run.out)
    assert run.code == 1 and document["ok"] is False
    by_key = {(c["name"], c["subject"]): c for c in document["checks"]}
    assert by_key[("authenticated", None)]["status"] == "ok"
    failed = by_key[("dag.exists", "dagtrigger_broken")]
    assert failed["status"] == "fail" and failed["fix"].startswith("check the DAG id")
    assert all(
        set(c) == {"name", "subject", "status", "message", "fix"} for c in document["checks"]
    )


def test_the_console_script(airflow: LocalAirflow) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(_direct(airflow, DAG_ID="dagtrigger_strict"), PYTHONIOENCODING="utf-8")
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "dagtrigger"), "doctor", "--event", str(EVENT)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "✘ DAG dagtrigger_strict params: Airflow would refuse the conf" in done.stdout
    assert done.stderr == ""


def test_an_unreachable_host_fails_reachable_with_the_fix(cli: Callable[..., Run]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = cli("doctor", AIRFLOW_URL=url, DAG_ID="dagtrigger_example")

    assert run.code == 1
    line = run.line("web server reachable")
    assert line.startswith(
        f"✘ web server reachable: 127.0.0.1:{url.rsplit(':', 1)[1]} refused the connection"
    )
    assert f"    fix: check AIRFLOW_URL={url} names the web server" in line
    assert f"curl -sS {url}/api/v2/version" in line
    assert run.line("API version") == "- API version: skipped: needs web server reachable"
    assert (
        run.line("DAG dagtrigger_example")
        == "- DAG dagtrigger_example: not checked: needs authenticated"
    )


# ---- Google: Composer's front, IAP, Composer's API ----


def test_composer_healthy(airflow: LocalAirflow, google: Google, cli: Callable[..., Run]) -> None:
    run = cli("doctor", "--write-check", **google.env())

    assert run.code == 0, run.out
    assert run.line("credentials") == (
        f"✔ credentials: service account {SERVICE_ACCOUNT} from the key file {google.key_file}: "
        "access token issued"
    )
    composer = "3" if airflow.major == "3" else "2"
    assert run.line("environment").startswith(f"✔ environment: Composer {composer}, Airflow ")
    assert f"web server {google.composer.url}" in run.line("environment")
    assert "(from the Composer image)" in run.line("API version")
    assert run.line("authenticated").startswith(
        f"✔ authenticated: Google identity {SERVICE_ACCOUNT} may read DAGs"
    )
    assert run.line("may trigger dagtrigger_example").startswith("✔")


def test_composer_without_the_composer_role_prints_the_binding_to_add(
    google: Google, cli: Callable[..., Run]
) -> None:
    google.composer.allowed = {"someone-else@acme-data.iam.gserviceaccount.com"}
    run = cli("doctor", **google.env())

    assert run.code == 1
    line = run.line("authenticated")
    assert line.startswith(
        f"✘ authenticated: Composer's web server refused {SERVICE_ACCOUNT} (403: Permission 'composer.environments.get' denied"
    )
    assert line.endswith(
        f"    fix: gcloud projects add-iam-policy-binding acme-data "
        f"--member=serviceAccount:{SERVICE_ACCOUNT} --role=roles/composer.user"
    )


def test_a_service_account_email_over_64_characters_gets_the_pre_registration_fix(
    google: Google, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    long_email = "dagtrigger-event-function-for-sales@acme-data-analytics.iam.gserviceaccount.com"
    key_file = tmp_path / "long.json"
    key_file.write_text(json.dumps(google.tokens.service_account_key(long_email)))
    google.environments.allowed = None
    google.composer.allowed = {SERVICE_ACCOUNT}  # Airflow has no user for it: refused
    run = cli("doctor", **google.env(GOOGLE_APPLICATION_CREDENTIALS=str(key_file)))

    credentials = run.line("credentials")
    assert credentials.startswith(f"! credentials: {long_email} from the key file")
    assert f"is {len(long_email)} characters long" in credentials
    assert "users create -- -u accounts.google.com:NUMERIC_ID" in credentials
    assert f"gcloud iam service-accounts describe {long_email}" in credentials
    refused = run.line("authenticated")
    assert refused.startswith(f"✘ authenticated: Composer's web server refused {long_email} (403")
    assert (
        "    fix: pre-register its Airflow user with role Op: `gcloud composer environments run prod "
        f"--project {ENVIRONMENT.split('/')[1]} --location europe-west1 users create" in refused
    )


def test_a_composer_web_server_the_function_cannot_reach(
    google: Google, cli: Callable[..., Run]
) -> None:
    run = cli("doctor", **google.env(COMPOSER_ENVIRONMENT=UNREACHABLE_ENVIRONMENT))

    assert run.code == 1
    line = run.line("web server reachable")
    assert "refused the connection" in line
    assert (
        "--update-web-server-allow-ip ip_range=EGRESS_IP/32" in line
        and "--location europe-west1" in line
    )


def test_a_wrong_iap_audience_names_the_client_id_iap_expects(
    google: Google, cli: Callable[..., Run]
) -> None:
    env = google.env(
        COMPOSER_ENVIRONMENT="",
        AIRFLOW_URL=google.iap.url,
        IAP_CLIENT_ID="999-wrong.apps.googleusercontent.com",
    )
    run = cli("doctor", **env)

    assert run.code == 1
    assert "ID token issued for audience 999-wrong.apps.googleusercontent.com" in run.line(
        "credentials"
    )
    assert f"behind IAP, OAuth client {IAP_CLIENT_ID}" in run.line("web server reachable")
    line = run.line("authenticated")
    assert line.startswith(
        "✘ authenticated: IAP rejected the ID token: its audience is "
        f"999-wrong.apps.googleusercontent.com (IAP_CLIENT_ID) but IAP expects {IAP_CLIENT_ID}"
    )
    assert f"    fix: set IAP_CLIENT_ID={IAP_CLIENT_ID}, or unset it" in line

    fixed = cli("doctor", **{**env, "IAP_CLIENT_ID": IAP_CLIENT_ID})
    assert fixed.line("authenticated").startswith(
        f"✔ authenticated: Google identity {SERVICE_ACCOUNT}"
    )


# ---- Amazon MWAA: invoke_rest_api and web login ----


@pytest.fixture
def mwaa(airflow: LocalAirflow, monkeypatch: pytest.MonkeyPatch) -> Iterator[MwaaStandin]:
    environment = MwaaEnvironment(
        MWAA_ENV, airflow.url, MWAA_VERSIONS[airflow.major], airflow.admin_headers
    )
    with MwaaStandin({MWAA_ENV: environment}) as standin:
        for name, value in standin.client_env().items():
            monkeypatch.setenv(name, value)
        yield standin


def _mwaa_env(**overrides: str) -> dict[str, str]:
    return {"MWAA_ENVIRONMENT": MWAA_ENV, "DAG_ID": "dagtrigger_example", **overrides}


@pytest.mark.parametrize("auth", ["mwaa", "mwaa-web"])
def test_mwaa_healthy(
    airflow: LocalAirflow, mwaa: MwaaStandin, cli: Callable[..., Run], auth: str
) -> None:
    run = cli("doctor", "--write-check", **_mwaa_env(AIRFLOW_AUTH=auth))

    assert run.code == 0, run.out
    assert (
        run.line("credentials")
        == "✔ credentials: AWS credentials from the environment (AWS_ACCESS_KEY_ID), region eu-west-1"
    )
    assert run.line("environment").startswith(
        f"✔ environment: Airflow {MWAA_VERSIONS[airflow.major]}, AVAILABLE"
    )
    if auth == "mwaa":
        assert "acts as Airflow role Op (MWAA_AIRFLOW_ROLE)" in run.line("authenticated")
        assert run.line("web server reachable").startswith(
            "✔ web server reachable: calls go through MWAA's API"
        )
    else:
        assert "TLS verified" in run.line("web server reachable")
    assert run.line("may trigger dagtrigger_example").startswith("✔")


def test_mwaa_access_denied_prints_the_iam_statement(
    mwaa: MwaaStandin, cli: Callable[..., Run]
) -> None:
    mwaa.allowed = {"AKIDSOMEONEELSE"}
    run = cli("doctor", **_mwaa_env())

    assert run.code == 1
    line = run.line("authenticated")
    assert line.startswith(
        f"✘ authenticated: MWAA environment {MWAA_ENV} (invoke_rest_api) refused the call (No Airflow role granted in IAM.)"
    )
    statement = {
        "Effect": "Allow",
        "Action": "airflow:InvokeRestApi",
        "Resource": f"arn:aws:airflow:eu-west-1:123456789012:role/{MWAA_ENV}/Op",
    }
    assert json.dumps(statement) in line.splitlines()[1]


# ---- errors read as data: every message reworded, the same checks and fixes ----


def _jwt_with_a_wrong_password(request: pytest.FixtureRequest) -> dict[str, str]:
    # Airflow 3 refuses to issue the token; Airflow 2 has no /auth/token at all.
    airflow: LocalAirflow = request.getfixturevalue("airflow")
    return _direct(airflow, AIRFLOW_AUTH="jwt", AIRFLOW_PASSWORD="not-the-password")


def _mwaa_refuses_in_iam(request: pytest.FixtureRequest) -> dict[str, str]:
    request.getfixturevalue("mwaa").allowed = {"AKIDSOMEONEELSE"}
    return _mwaa_env()


def _composer_api_refuses(request: pytest.FixtureRequest) -> dict[str, str]:
    google: Google = request.getfixturevalue("google")
    google.environments.allowed = {"someone-else@acme-data.iam.gserviceaccount.com"}
    return google.env()


def _iap_with_the_wrong_audience(request: pytest.FixtureRequest) -> dict[str, str]:
    google: Google = request.getfixturevalue("google")
    return google.env(
        COMPOSER_ENVIRONMENT="",
        AIRFLOW_URL=google.iap.url,
        IAP_CLIENT_ID="999-wrong.apps.googleusercontent.com",
    )


def _reword_every_message(monkeypatch: pytest.MonkeyPatch) -> None:
    made = DagTriggerError.__init__

    def reworded(self: DagTriggerError, problem: str, **fields: Any) -> None:
        made(self, "reworded", **fields)

    monkeypatch.setattr(DagTriggerError, "__init__", reworded)


def _checks_and_fixes(run: Run) -> list[tuple[str, str | None, str, str | None]]:
    checks = json.loads(run.out)["checks"]
    return [(c["name"], c["subject"], c["status"], c["fix"]) for c in checks]


@pytest.mark.parametrize(
    "scenario",
    [
        _jwt_with_a_wrong_password,
        _mwaa_refuses_in_iam,
        _composer_api_refuses,
        _iap_with_the_wrong_audience,
    ],
    ids=lambda scenario: scenario.__name__.strip("_"),
)
def test_rewording_every_error_changes_no_check_status_or_fix(
    airflow: LocalAirflow,
    cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    scenario: Callable[[pytest.FixtureRequest], dict[str, str]],
) -> None:
    env = scenario(request)
    as_worded = cli("doctor", "--json", **env)
    _reword_every_message(monkeypatch)
    reworded = cli("doctor", "--json", **env)

    assert as_worded.code == reworded.code == 1
    assert _checks_and_fixes(reworded) == _checks_and_fixes(as_worded)
    assert "reworded" in reworded.out and "reworded" not in as_worded.out, "an error was read"


# ---- dagtrigger api, on every platform ----


def _api_round_trip(cli: Callable[..., Run], key: str, **env: str) -> None:
    listed = cli("api", "GET", "/dags", **env)
    assert listed.code == 0, listed.err
    dag_ids = {dag["dag_id"] for dag in json.loads(listed.out)["dags"]}
    assert {"dagtrigger_example", "dagtrigger_sales", "dagtrigger_strict"} <= dag_ids

    value = f"set by dagtrigger api at {time.time()}"
    created = cli(
        "api", "POST", "/variables", "--data", json.dumps({"key": key, "value": value}), **env
    )
    assert created.code == 0, created.out + created.err
    read = cli("api", "GET", f"/variables/{key}", **env)
    assert read.code == 0 and json.loads(read.out)["value"] == value


def test_api_on_self_hosted_airflow(airflow: LocalAirflow, cli: Callable[..., Run]) -> None:
    env = _direct(airflow)
    _api_round_trip(cli, f"dagtrigger_api_direct_{airflow.major}", **env)
    prefixed = cli(
        "api", "GET", f"/api/{'v2' if airflow.major == '3' else 'v1'}/dags/dagtrigger_strict", **env
    )
    assert prefixed.code == 0 and json.loads(prefixed.out)["dag_id"] == "dagtrigger_strict"
    missing = cli("api", "GET", "/dags/no_such_dag", **env)
    assert missing.code == 1 and "not found" in missing.out.lower()
    assert missing.err.strip() == "dagtrigger: HTTP 404 from GET /dags/no_such_dag"
    bad = cli("api", "POST", "/variables", "--data", "{key: 1}", **env)
    assert bad.code == 2 and "--data is not valid JSON" in bad.err


def test_api_on_composer(airflow: LocalAirflow, google: Google, cli: Callable[..., Run]) -> None:
    _api_round_trip(cli, f"dagtrigger_api_composer_{airflow.major}", **google.env(DAG_ID=""))


@pytest.mark.parametrize("auth", ["mwaa", "mwaa-web"])
def test_api_on_mwaa(
    airflow: LocalAirflow, mwaa: MwaaStandin, cli: Callable[..., Run], auth: str
) -> None:
    key = f"dagtrigger_api_{auth.replace('-', '_')}_{airflow.major}"
    _api_round_trip(cli, key, MWAA_ENVIRONMENT=MWAA_ENV, AIRFLOW_AUTH=auth)
    if auth == "mwaa":
        assert ("dagtrigger-doctor", "GET", f"/variables/{key}") in mwaa.invocations
    else:
        assert mwaa.logins >= 1 and not mwaa.invocations
