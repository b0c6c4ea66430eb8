"""functions/main.py under functions-framework, through Google's protocols, into real Airflow 2 and 3.

google-auth runs unmodified against the local token endpoint and metadata server; Composer's
front, IAP and the Composer API are stand-ins that check the tokens the way Google does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.functions_server import FunctionsServer
from tests.integration.helpers import read_run
from tests.standins.google_composer import (
    COMPOSER1_ENVIRONMENT,
    IAP_CLIENT_ID,
    SERVICE_ACCOUNT,
    UNREACHABLE_ENVIRONMENT,
    Google,
)
from tools.local_airflow import LocalAirflow

pytestmark = pytest.mark.airflow

EVENTS = Path(__file__).resolve().parent.parent / "events"


def _function(tmp_path: Path, env: dict[str, str], **kwargs: Any) -> FunctionsServer:
    return FunctionsServer("handle_cloud_event", env, tmp_path / "function.log", **kwargs)


def _gcs_attributes(name: str, generation: str) -> dict[str, str]:
    return {
        "specversion": "1.0",
        "type": "google.cloud.storage.object.v1.finalized",
        "source": "//storage.googleapis.com/projects/_/buckets/acme-landing",
        "subject": f"objects/{name}",
        "id": f"gcs-{generation}",
        "time": "2024-06-01T06:15:02.437Z",
    }


def _gcs_data(name: str, generation: str) -> dict[str, Any]:
    return {"bucket": "acme-landing", "name": name, "generation": generation, "size": "42"}


def _run_id_for(server: FunctionsServer, event_id: str) -> str:
    runs = [e for e in server.log_entries() if e.get("event_id") == event_id and "dag_run_id" in e]
    assert runs, f"no run logged for {event_id}: {server.log_entries()}"
    return str(runs[0]["dag_run_id"])


def test_a_binary_gcs_cloudevent_on_composer_starts_one_run_with_one_token(
    airflow: LocalAirflow, google: Google, tmp_path: Path
) -> None:
    name = f"sales/2024-06-0{airflow.major}/orders.csv"
    with _function(tmp_path, google.env()) as function:
        statuses = [
            function.post_binary(_gcs_attributes(name, "501"), _gcs_data(name, "501"))
            for _ in range(3)
        ]
        for generation in ("502", "503"):
            statuses.append(
                function.post_binary(_gcs_attributes(name, generation), _gcs_data(name, generation))
            )
        assert statuses == [200] * 5
        outcomes = [e["outcome"] for e in function.log_entries() if e.get("event_id") == "gcs-501"]
        run = read_run(airflow, "dagtrigger_example", _run_id_for(function, "gcs-501"))

    assert outcomes == ["created", "duplicate", "duplicate"]
    assert (
        run is not None
        and run["conf"]["uri"] == f"gs://acme-landing/{name}"
        and run["conf"]["size"] == 42
    )
    assert google.tokens.access_tokens_issued == 1, "warm events must reuse the access token"
    assert google.environments.request_count == 1, "the environment is read once per instance"
    assert all(email == SERVICE_ACCOUNT for _, _, email in google.composer.requests_seen)


@pytest.mark.parametrize(
    "sample",
    ["pubsub_json", "pubsub_text", "gcs_notification_pubsub_json_api_v1", "gcs_cloudevent_deleted"],
)
def test_structured_cloudevents_start_runs_with_the_documented_conf(
    airflow: LocalAirflow, google: Google, tmp_path: Path, sample: str
) -> None:
    event = json.loads((EVENTS / f"{sample}.json").read_text())
    expected = json.loads((EVENTS / f"{sample}.expected.json").read_text())["events"][0]["conf"]
    with _function(tmp_path, google.env(DAG_ID="dagtrigger_sales")) as function:
        assert function.post_structured(event) == 200
        run = read_run(airflow, "dagtrigger_sales", _run_id_for(function, expected["event_id"]))
    assert run is not None and run["conf"] == expected


@pytest.mark.parametrize("google", [125], indirect=True)
def test_the_access_token_is_renewed_only_when_it_nears_expiry(
    airflow: LocalAirflow, google: Google, tmp_path: Path
) -> None:
    # Tokens live 125 s and dagtrigger renews 120 s before expiry: fresh for about 5 s.
    with _function(tmp_path, google.env()) as function:
        for generation in ("601", "602"):
            assert (
                function.post_binary(
                    _gcs_attributes("a.csv", generation), _gcs_data("a.csv", generation)
                )
                == 200
            )
        assert google.tokens.access_tokens_issued == 1
        time.sleep(6)
        assert (
            function.post_binary(_gcs_attributes("a.csv", "603"), _gcs_data("a.csv", "603")) == 200
        )
        assert google.tokens.access_tokens_issued == 2


def test_composer1_behind_iap_discovers_the_client_id_and_reuses_the_id_token(
    airflow: LocalAirflow, google: Google, tmp_path: Path
) -> None:
    env = google.env(COMPOSER_ENVIRONMENT=COMPOSER1_ENVIRONMENT)
    with _function(tmp_path, env) as function:
        for generation in ("701", "702", "703"):
            assert (
                function.post_binary(
                    _gcs_attributes("b.csv", generation), _gcs_data("b.csv", generation)
                )
                == 200
            )
        run_id = _run_id_for(function, "gcs-703")
    assert read_run(airflow, "dagtrigger_example", run_id) is not None
    assert google.tokens.id_tokens_issued == 1
    seen = [path for _, path, email in google.iap.requests_seen if email == SERVICE_ACCOUNT]
    assert len(seen) == 3, "one authenticated request per event on the warm path"


def test_iap_with_an_id_token_from_the_metadata_server(
    airflow: LocalAirflow, google: Google, tmp_path: Path
) -> None:
    env = google.env(
        GOOGLE_APPLICATION_CREDENTIALS="",
        COMPOSER_ENVIRONMENT="",
        AIRFLOW_URL=google.iap.url,
        IAP_CLIENT_ID=IAP_CLIENT_ID,
        **google.tokens.metadata_env(),
    )
    google.iap.allowed = {google.tokens.metadata_identity.email}
    with _function(tmp_path, env) as function:
        assert (
            function.post_binary(_gcs_attributes("c.csv", "801"), _gcs_data("c.csv", "801")) == 200
        )
        run_id = _run_id_for(function, "gcs-801")
    assert read_run(airflow, "dagtrigger_example", run_id) is not None


def test_a_wrong_iap_audience_is_acknowledged_with_the_fix_not_a_traceback(
    airflow: LocalAirflow, google: Google, tmp_path: Path
) -> None:
    env = google.env(
        COMPOSER_ENVIRONMENT="",
        AIRFLOW_URL=google.iap.url,
        IAP_CLIENT_ID="999-wrong.apps.googleusercontent.com",
    )
    with _function(tmp_path, env) as function:
        assert (
            function.post_binary(_gcs_attributes("d.csv", "901"), _gcs_data("d.csv", "901")) == 200
        )
        errors = [e for e in function.log_entries() if e["severity"] == "ERROR"]
        log_text = function.log_path.read_text()
    assert len(errors) == 1 and errors[0]["outcome"] == "failed"
    assert "IAP_CLIENT_ID" in errors[0]["message"] and "999-wrong" in errors[0]["message"]
    assert "Traceback" not in log_text


def test_a_missing_composer_role_names_the_role_to_grant(
    airflow: LocalAirflow, google: Google, tmp_path: Path
) -> None:
    google.composer.allowed = {"someone-else@acme-data.iam.gserviceaccount.com"}
    with _function(tmp_path, google.env()) as function:
        assert (
            function.post_binary(_gcs_attributes("e.csv", "1001"), _gcs_data("e.csv", "1001"))
            == 200
        )
        (error,) = [e for e in function.log_entries() if e["severity"] == "ERROR"]
    assert "roles/composer.user" in error["message"] and SERVICE_ACCOUNT in error["message"]


def test_a_transient_failure_makes_the_platform_redeliver(
    airflow: LocalAirflow, google: Google, tmp_path: Path
) -> None:
    env = google.env(COMPOSER_ENVIRONMENT=UNREACHABLE_ENVIRONMENT, DAGTRIGGER_DEADLINE="2")
    with _function(tmp_path, env) as function:
        status = function.post_binary(_gcs_attributes("f.csv", "1101"), _gcs_data("f.csv", "1101"))
        errors = [e for e in function.log_entries() if e["severity"] == "ERROR"]
    assert status == 500
    assert any("will be redelivered" in e["message"] for e in errors)
    assert any("web server access control" in e["message"] for e in errors)


def test_an_unsupported_event_is_acknowledged_and_logged(
    airflow: LocalAirflow, google: Google, tmp_path: Path
) -> None:
    event = {
        "specversion": "1.0",
        "type": "google.cloud.audit.log.v1.written",
        "source": "//cloudaudit.googleapis.com/projects/acme-data/logs/activity",
        "id": "audit-1",
        "data": {"protoPayload": {}},
    }
    with _function(tmp_path, google.env()) as function:
        assert function.post_structured(event) == 200
        (error,) = [e for e in function.log_entries() if e["severity"] == "ERROR"]
    assert (
        error["outcome"] == "rejected" and "google.cloud.audit.log.v1.written" in error["message"]
    )


def test_the_legacy_background_entry_point(
    airflow: LocalAirflow, google: Google, tmp_path: Path
) -> None:
    payload = json.loads((EVENTS / "gcs_legacy_finalize.json").read_text())
    expected = json.loads((EVENTS / "gcs_legacy_finalize.expected.json").read_text())["events"][0][
        "conf"
    ]
    server = FunctionsServer(
        "handle_background_event",
        google.env(
            DAG_ID="",
            DAGTRIGGER_ROUTES=json.dumps(
                [{"dag_id": "dagtrigger_strict", "conf": {"partition": "2024-06-01"}}]
            ),
        ),
        tmp_path / "background.log",
        signature_type="event",
    )
    with server as function:
        assert function.post(payload, {"Content-Type": "application/json"}) == 200
        run = read_run(airflow, "dagtrigger_strict", _run_id_for(function, expected["event_id"]))
    assert (
        run is not None
        and run["conf"]["uri"] == expected["uri"]
        and run["conf"]["partition"] == "2024-06-01"
    )


def test_logs_carry_no_credentials(airflow: LocalAirflow, google: Google, tmp_path: Path) -> None:
    with _function(tmp_path, google.env()) as function:
        function.post_binary(_gcs_attributes("g.csv", "1201"), _gcs_data("g.csv", "1201"))
        log_text = function.log_path.read_text()
    assert "Bearer" not in log_text and "eyJ" not in log_text
    assert google.key["private_key_id"] not in log_text and "PRIVATE KEY" not in log_text


def test_a_pubsub_push_body_from_the_push_subscription(
    airflow: LocalAirflow, google: Google, tmp_path: Path
) -> None:
    # The Pub/Sub path of infra/gcp: our own push subscription posts the raw push body.
    body = json.loads((EVENTS / "pubsub_push_body.json").read_text())
    expected = json.loads((EVENTS / "pubsub_push_body.expected.json").read_text())["events"][0][
        "conf"
    ]
    with _function(tmp_path, google.env(DAG_ID="dagtrigger_sales")) as function:
        assert function.post(body, {"Content-Type": "application/json"}) == 200
        assert function.post(body, {"Content-Type": "application/json"}) == 200
        outcomes = [
            e["outcome"]
            for e in function.log_entries()
            if e.get("event_id") == expected["event_id"]
        ]
        run = read_run(airflow, "dagtrigger_sales", _run_id_for(function, expected["event_id"]))
    assert run is not None and run["conf"]["data"] == expected["data"]
    assert outcomes[-1] == "duplicate"
