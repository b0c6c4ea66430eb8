"""The `dagtrigger` command: JSON lines on stdout, one error line on stderr, meaningful exit codes."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.conftest import Result
from tests.unit.stub_airflow import Reply, StubAirflow, closed_port_url

GCS_EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "type": "google.cloud.storage.object.v1.finalized",
    "source": "//storage.googleapis.com/projects/_/buckets/b",
    "id": "1",
    "time": "2024-06-01T00:00:00Z",
    "data": {"bucket": "b", "name": "x.csv", "generation": "1"},
}
S3_TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2024-06-01T00:00:00.000Z",
    "Bucket": "b",
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
V2_RUNS = "/api/v2/dags/etl/dagRuns"
PASSWORD = "s3cr3t-Pa55word"
NESTED_TOO_DEEPLY = "[" * 100_000 + "]" * 100_000


pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubAirflow]:
    with StubAirflow() as server:
        monkeypatch.setenv("AIRFLOW_URL", server.url)
        monkeypatch.setenv("DAGTRIGGER_DEADLINE", "1")
        yield server


def write_json(tmp_path: Path, payload: Any, name: str = "event.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(payload), encoding="utf-8")
    return str(path)


def assert_one_error_line(err: list[str], *fragments: str) -> None:
    assert len(err) == 1, err
    assert err[0].startswith("dagtrigger: error: ")
    for fragment in fragments:
        assert fragment in err[0]


# --- plan -------------------------------------------------------------------------------------


def test_plan_prints_one_json_line_per_run(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAG_ID", "etl")

    code, out, err = cli("plan", write_json(tmp_path, GCS_EVENT))

    assert (code, err) == (0, [])
    [line] = out
    run = json.loads(line)
    assert list(run) == ["dag_id", "dag_run_id", "conf"]
    assert run["dag_id"] == "etl"
    assert RUN_ID_PATTERN.match(run["dag_run_id"])
    assert run["conf"]["uri"] == "gs://b/x.csv"
    assert run["conf"]["version"] == "1"


def test_plan_reads_standard_input(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAG_ID", "etl")
    from_file = cli("plan", write_json(tmp_path, GCS_EVENT))

    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(GCS_EVENT)))
    from_stdin = cli("plan", "-")

    assert from_stdin == from_file
    assert len(from_stdin[1]) == 1


def test_plan_with_routes_prints_a_line_for_every_matching_dag(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    routes = [
        {"dag_id": "archive"},
        {"dag_id": "load_csv", "match": {"suffix": ".csv"}, "conf": {"file": "{name}"}},
        {"dag_id": "load_json", "match": {"suffix": ".json"}},
    ]

    code, out, _ = cli(
        "plan", write_json(tmp_path, GCS_EVENT), "--routes", json.dumps(routes), "--dag-id", "x"
    )

    runs = [json.loads(line) for line in out]
    assert code == 0
    assert [r["dag_id"] for r in runs] == ["archive", "load_csv"]
    assert runs[0]["dag_run_id"] == runs[1]["dag_run_id"]  # one event, one id, in every DAG
    assert runs[1]["conf"]["file"] == "x.csv"


def test_plan_prints_the_asset_events_an_event_would_record(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    routes = [
        {"dag_id": "load_csv", "asset": "gs://b/landing", "partition_key": "{bucket}-{name}"},
        {"asset": "gs://b/all", "replace_extra": True, "extra": {"file": "{name}"}},
    ]

    code, out, _ = cli("plan", write_json(tmp_path, GCS_EVENT), "--routes", json.dumps(routes))

    run, landing, every = (json.loads(line) for line in out)
    assert code == 0
    assert run["dag_id"] == "load_csv"
    assert (landing["asset"], landing["partition_key"]) == ("gs://b/landing", "b-x.csv")
    assert landing["extra"]["uri"] == "gs://b/x.csv"
    assert landing["extra"]["dagtrigger_event"] == run["dag_run_id"]
    assert every == {
        "asset": "gs://b/all",
        "partition_key": None,
        "extra": {"file": "x.csv", "dagtrigger_event": run["dag_run_id"]},
    }


def test_dag_id_option_overrides_the_environment(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAG_ID", "from_env")

    _, out, _ = cli("plan", write_json(tmp_path, GCS_EVENT), "--dag-id", "from_option")

    assert json.loads(out[0])["dag_id"] == "from_option"


def test_the_s3_test_event_plans_nothing_and_succeeds(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAG_ID", "etl")

    code, out, err = cli("plan", write_json(tmp_path, S3_TEST_EVENT))

    assert (code, out) == (0, [])
    assert any(line.startswith("dagtrigger: ignored: ") for line in err)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        pytest.param(None, ["cannot read", "No such file or directory"], id="missing-file"),
        pytest.param(b'{"specversion": ', ["is not valid JSON"], id="invalid-json"),
        pytest.param(b"\xff\xfe{}", ["is not UTF-8 text"], id="not-utf8"),
        pytest.param(b'{"hello": "world"}', ["of no supported kind", "hello"], id="unsupported"),
        pytest.param(b"[1, 2]", ["not a JSON object"], id="not-an-object"),
    ],
)
def test_unusable_input_exits_2_with_one_error_line(
    cli: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: bytes | None,
    fragments: list[str],
) -> None:
    monkeypatch.setenv("DAG_ID", "etl")
    path = tmp_path / "event.json"
    if content is not None:
        path.write_bytes(content)

    code, out, err = cli("plan", str(path))

    assert (code, out) == (2, [])
    assert_one_error_line(err, *fragments)


def test_neither_dag_id_nor_routes_exits_2_naming_both(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    code, out, err = cli("plan", write_json(tmp_path, GCS_EVENT))

    assert (code, out) == (2, [])
    assert_one_error_line(err, "DAG_ID", "DAGTRIGGER_ROUTES")


def test_invalid_routes_exit_2(cli: Callable[..., Result], tmp_path: Path) -> None:
    code, out, err = cli("plan", write_json(tmp_path, GCS_EVENT), "--routes", "[{]")

    assert (code, out) == (2, [])
    assert_one_error_line(err, "DAGTRIGGER_ROUTES (inline JSON) is not valid JSON")


def test_a_routes_file_that_is_not_utf8_exits_2(cli: Callable[..., Result], tmp_path: Path) -> None:
    routes = tmp_path / "routes.json"
    routes.write_bytes('[{"dag_id": "caf\xe9"}]'.encode("latin-1"))

    code, _, err = cli("plan", write_json(tmp_path, GCS_EVENT), "--routes", str(routes))

    assert code == 2
    assert_one_error_line(err, "DAGTRIGGER_ROUTES")


def test_an_object_name_with_a_lone_surrogate_does_not_crash(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAG_ID", "etl")
    event = write_json(tmp_path, GCS_EVENT | {"data": {**GCS_EVENT["data"], "name": "x\ud800.csv"}})

    code, out, err = cli("plan", event)

    # Either outcome is a fair answer: a run with a valid id, or the event refused in one line.
    if code == 0:
        assert RUN_ID_PATTERN.match(json.loads(out[0])["dag_run_id"])
    else:
        assert code == 2
        assert_one_error_line(err)


# --- settings no request could use -------------------------------------------------------------

UNUSABLE_SETTINGS = [
    pytest.param({"AIRFLOW_URL": "http://[::1"}, "AIRFLOW_URL='http://[::1'", id="open-bracket"),
    pytest.param({"AIRFLOW_URL": "http://airflow]"}, "AIRFLOW_URL=", id="close-bracket"),
    pytest.param({"AIRFLOW_URL": "http://[10.0.0.5]"}, "AIRFLOW_URL=", id="ipv4-in-brackets"),
    pytest.param({"AIRFLOW_URL": "http://airflow:99999"}, "has port '99999'", id="port-too-big"),
    pytest.param({"AIRFLOW_URL": "http://airflow:port"}, "has port 'port'", id="port-a-word"),
    pytest.param({"AIRFLOW_URL": "http://airflow:-1"}, "has port '-1'", id="port-negative"),
    pytest.param({"AIRFLOW_URL": "http://exa mple.com"}, "a space (U+0020)", id="space"),
    pytest.param({"AIRFLOW_URL": "http://a\n.example"}, "a line break (U+000A)", id="newline"),
    pytest.param({"AIRFLOW_URL": "http://:80"}, "has no host name", id="empty-host"),
    pytest.param({"AIRFLOW_URL": "http://☃.example"}, "internationalised", id="invalid-idn"),
    pytest.param({"AIRFLOW_URL": "http://xn--.com"}, "internationalised", id="invalid-punycode"),
    pytest.param({"AIRFLOW_URL": "http://airflow/%"}, "use %25 for a literal %", id="lone-%"),
    pytest.param(
        {"AIRFLOW_URL": f"https://svc:{PASSWORD}@airflow.example.com"},
        "AIRFLOW_URL='https://***@airflow.example.com'",
        id="credentials-in-url",
    ),
    pytest.param(
        {"AIRFLOW_TOKEN": f"{PASSWORD}\nX-Injected: 1"},
        "AIRFLOW_TOKEN has a line break (U+000A)",
        id="token-with-newline",
    ),
    pytest.param(
        {"DAGTRIGGER_CONCURRENCY": "1" * 5000},
        "at most 18 digits",
        id="concurrency-of-5000-digits",
    ),
]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("plan", "EVENT"), id="plan"),
        pytest.param(("send", "EVENT"), id="send"),
        pytest.param(("trigger", "etl"), id="trigger"),
        pytest.param(("api", "GET", "/dags"), id="api"),
    ],
)
@pytest.mark.parametrize(("env", "fragment"), UNUSABLE_SETTINGS)
def test_a_setting_no_request_could_use_exits_2_with_one_error_line(
    cli: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    env: dict[str, str],
    fragment: str,
) -> None:
    for name, value in {
        "DAG_ID": "etl",
        "AIRFLOW_URL": "http://127.0.0.1:9",
        "AIRFLOW_API_VERSION": "v2",
        "DAGTRIGGER_DEADLINE": "0.3",
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    event = write_json(tmp_path, GCS_EVENT)

    code, out, err = cli(*(event if arg == "EVENT" else arg for arg in argv))

    assert (code, out) == (2, [])
    assert_one_error_line(err, fragment)
    assert PASSWORD not in err[0]


@pytest.mark.parametrize(("env", "fragment"), UNUSABLE_SETTINGS)
def test_doctor_names_a_setting_no_request_could_use_on_its_configuration_line(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str
) -> None:
    monkeypatch.setenv("DAG_ID", "etl")
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    code, out, err = cli("doctor", "--json")

    assert code == 1
    [configuration] = [
        c for c in json.loads("\n".join(out))["checks"] if c["name"] == "configuration"
    ]
    assert configuration["status"] == "fail"
    assert fragment in f"{configuration['message']}: {configuration['fix']}"
    assert PASSWORD not in "\n".join(out + err)


# --- trigger and send against a server --------------------------------------------------------


def test_trigger_prints_the_outcome(cli: Callable[..., Result], stub: StubAirflow) -> None:
    stub.always("GET", "/api/v2/version", Reply(200, {"version": "3.0.2"}))
    stub.always("POST", V2_RUNS, Reply(200, {"dag_run_id": "manual:1+a", "state": "queued"}))

    code, out, err = cli(
        "trigger", "etl", "--run-id", "manual:1+a", "--conf", '{"day": "2024-06-01"}'
    )

    assert (code, err) == (0, [])
    assert [json.loads(line) for line in out] == [
        {"dag_id": "etl", "dag_run_id": "manual:1+a", "outcome": "created", "state": "queued"}
    ]
    [request] = stub.received("POST", V2_RUNS)
    assert request.json()["conf"] == {"day": "2024-06-01"}
    assert request.json()["dag_run_id"] == "manual:1+a"


def test_trigger_twice_with_one_run_id_reports_a_duplicate(
    cli: Callable[..., Result], stub: StubAirflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_API_VERSION", "v2")
    stub.always("POST", V2_RUNS, Reply(409, {"detail": "already exists"}))
    stub.always("GET", f"{V2_RUNS}/r1", Reply(200, {"dag_run_id": "r1", "state": "success"}))

    code, out, _ = cli("trigger", "etl", "--run-id", "r1")

    assert code == 0
    assert json.loads(out[0]) == {
        "dag_id": "etl",
        "dag_run_id": "r1",
        "outcome": "duplicate",
        "state": "success",
    }


@pytest.mark.parametrize(
    ("conf", "fragment"),
    [
        pytest.param('["a"]', "--conf must be a JSON object", id="list"),
        pytest.param("day=1", "--conf is not valid JSON", id="not-json"),
        # Airflow would refuse the body: NaN is not JSON
        pytest.param('{"ratio": NaN}', "--conf is not valid JSON", id="nan"),
        pytest.param(
            NESTED_TOO_DEEPLY, "--conf is not valid JSON (JSON nested too deeply)", id="nested"
        ),
    ],
)
def test_trigger_conf_must_be_a_json_object(
    cli: Callable[..., Result], stub: StubAirflow, conf: str, fragment: str
) -> None:
    code, out, err = cli("trigger", "etl", "--conf", conf)

    assert (code, out) == (2, [])
    assert_one_error_line(err, fragment)
    assert stub.received() == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--poll", "-1"),
        ("--poll", "0"),
        ("--poll", "nan"),
        ("--poll", "inf"),
        ("--wait-timeout", "nan"),
        ("--wait-timeout", "1e300"),
    ],
)
def test_trigger_wait_times_no_clock_can_keep_exit_2_before_triggering(
    cli: Callable[..., Result], stub: StubAirflow, option: str, value: str
) -> None:
    code, out, err = cli("trigger", "etl", "--wait", option, value)

    assert (code, out) == (2, [])
    assert_one_error_line(err, f"{option} ", "is not a number of seconds between 0 and")
    assert stub.received() == []


def test_api_data_nested_too_deeply_exits_2(cli: Callable[..., Result], stub: StubAirflow) -> None:
    code, out, err = cli("api", "POST", "/variables", "--data", NESTED_TOO_DEEPLY)

    assert (code, out) == (2, [])
    assert_one_error_line(err, "--data is not valid JSON (JSON nested too deeply)")
    assert stub.received() == []


def test_trigger_of_a_missing_dag_exits_1(
    cli: Callable[..., Result], stub: StubAirflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_API_VERSION", "v2")
    stub.always("POST", V2_RUNS, Reply(404, {"detail": "DAG with dag_id: 'etl' not found"}))

    code, out, err = cli("trigger", "etl")

    assert (code, out) == (1, [])
    assert_one_error_line(err, "DAG 'etl' was not found")


def test_trigger_without_a_reachable_airflow_exits_75(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_URL", closed_port_url())
    monkeypatch.setenv("AIRFLOW_API_VERSION", "v2")
    monkeypatch.setenv("DAGTRIGGER_DEADLINE", "0.3")

    code, out, err = cli("trigger", "etl")

    assert (code, out) == (75, [])
    assert_one_error_line(err, "Connection refused", "gave up after")


def test_trigger_without_airflow_url_exits_2(cli: Callable[..., Result]) -> None:
    code, _, err = cli("trigger", "etl")

    assert code == 2
    assert_one_error_line(err, "AIRFLOW_URL is not set")


def test_send_creates_the_planned_run(
    cli: Callable[..., Result], stub: StubAirflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAG_ID", "etl")
    monkeypatch.setenv("AIRFLOW_API_VERSION", "v2")
    stub.always("POST", V2_RUNS, Reply(200, {"state": "queued"}))
    event = write_json(tmp_path, GCS_EVENT)
    [planned] = [json.loads(line) for line in cli("plan", event)[1]]

    code, out, _ = cli("send", event)

    assert code == 0
    assert json.loads(out[0]) == {
        "dag_id": "etl",
        "dag_run_id": planned["dag_run_id"],
        "outcome": "created",
        "state": "queued",
    }
    [request] = stub.received("POST", V2_RUNS)
    assert request.json()["conf"] == planned["conf"]
    assert request.json()["note"].startswith("Triggered by dagtrigger: gcs")


# --- the installed console script -------------------------------------------------------------


def console_script(
    *argv: str, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("dagtrigger")
    assert script.exists(), f"console script missing at {script}: pip install -e ."
    return subprocess.run(
        [str(script), *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=30,
        check=False,
    )


def test_the_console_script_plans_from_stdin() -> None:
    done = console_script("plan", "-", env={"DAG_ID": "etl"}, stdin=json.dumps(GCS_EVENT))

    assert (done.returncode, done.stderr) == (0, "")
    [line] = done.stdout.splitlines()
    assert json.loads(line)["dag_id"] == "etl"


def test_the_console_script_fails_without_a_traceback(tmp_path: Path) -> None:
    done = console_script("plan", str(tmp_path / "missing.json"), env={"DAG_ID": "etl"})

    assert (done.returncode, done.stdout) == (2, "")
    assert "Traceback" not in done.stderr
    assert_one_error_line(done.stderr.splitlines(), "cannot read")
