"""`dagtrigger doctor` and `dagtrigger api` at the edges: usage errors, configuration errors, and
what reaches the wire (against a local HTTP stub; the real Airflow runs are integration tests)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.standins.hostile_http import ForwardProxy
from tests.unit.conftest import Result
from tests.unit.stub_airflow import Reply, StubAirflow

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubAirflow]:
    with StubAirflow() as server:
        monkeypatch.setenv("AIRFLOW_URL", server.url)
        monkeypatch.setenv("AIRFLOW_TOKEN", "t0ken")
        server.always("GET", "/api/v2/version", Reply(200, {"version": "3.1.0"}))
        yield server


def test_a_configuration_error_is_a_failed_check_with_its_fix_not_a_usage_error(
    cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_URL", "http://airflow.example.com/api/v2")
    code, out, _ = cli("doctor")
    assert code == 1
    assert out[0] == (
        "✘ configuration: AIRFLOW_URL='http://airflow.example.com/api/v2' ends in /api/v2"
    )
    assert out[1].startswith("    fix: set the base URL AIRFLOW_URL=http://airflow.example.com")
    assert out[-1].startswith("1 problem and 0 warnings")


def test_an_unreadable_event_file_is_a_usage_error(cli: Callable[..., Result]) -> None:
    code, out, err = cli("doctor", "--event", "/no/such/event.json")
    assert (code, out) == (2, [])
    assert err == ["dagtrigger: error: cannot read /no/such/event.json: No such file or directory"]


def test_an_event_dagtrigger_cannot_read_fails_routing(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DAG_ID", "etl")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"hello": "world"}))
    code, out, _ = cli("doctor", "--event", str(event))
    assert code == 1
    assert out[1].startswith("✘ routing: the function would reject this event: ")


def test_api_adds_the_servers_prefix_and_replaces_a_given_one(
    cli: Callable[..., Result], stub: StubAirflow
) -> None:
    stub.always("GET", "/api/v2/dags", Reply(200, {"dags": [], "total_entries": 0}))
    for path in ("/dags", "dags", "/api/v1/dags", "/api/v2/dags"):
        code, out, _ = cli("api", "get", path)
        assert code == 0 and json.loads("\n".join(out)) == {"dags": [], "total_entries": 0}
    received = stub.received("GET", "/api/v2/dags")
    assert len(received) == 4
    assert all(r.headers.get("Authorization") == "Bearer t0ken" for r in received)


def test_api_sends_the_body_and_reports_a_refusal(
    cli: Callable[..., Result], stub: StubAirflow, tmp_path: Path
) -> None:
    stub.reply("POST", "/api/v2/variables", Reply(403, {"detail": "Forbidden"}))
    body = tmp_path / "variable.json"
    body.write_text('{"key": "k", "value": "v"}')
    code, out, err = cli("api", "POST", "/variables", "--data", f"@{body}")
    assert code == 1
    assert json.loads("\n".join(out)) == {"detail": "Forbidden"}
    assert err == ["dagtrigger: HTTP 403 from POST /variables"]
    assert stub.received("POST", "/api/v2/variables")[0].json() == {"key": "k", "value": "v"}


def test_api_refuses_a_body_that_is_not_json(cli: Callable[..., Result], stub: StubAirflow) -> None:
    code, _, err = cli("api", "POST", "/variables", "--data", "key=k")
    assert code == 2 and err[0].startswith("dagtrigger: error: --data is not valid JSON")
    assert stub.received("POST") == []


def test_doctor_names_the_proxy_and_its_checks_go_through_it(
    cli: Callable[..., Result], stub: StubAirflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAG_ID", "etl")
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        _, out, _ = cli("doctor")

    assert out[0].startswith("✔ configuration: Airflow at http://127.0.0.1:")
    assert out[0].endswith(f"; through the proxy {proxy.url} (HTTP_PROXY)")
    assert f"GET {stub.url}/api/v2/version" in proxy.seen


def test_a_proxy_dagtrigger_cannot_use_fails_the_configuration_check(
    cli: Callable[..., Result], stub: StubAirflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAG_ID", "etl")
    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    code, out, _ = cli("doctor")
    assert code == 1
    assert out[0].startswith("✘ configuration: HTTP_PROXY is not an http:// or https:// proxy URL")
