"""The Airflow client over real HTTP, against a scripted server on loopback.

Each test scripts what Airflow answers and checks what the user gets (created, duplicate, or an
error that says what to fix) and what reached the wire (bodies, paths, how many attempts).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dagtrigger.airflow.client import AirflowClient
from dagtrigger.airflow.retry import RetryPolicy
from dagtrigger.airflow.throttle import Throttle
from dagtrigger.airflow.transport import HttpTransport
from dagtrigger.auth import Auth, NoAuth
from dagtrigger.auth.airflow_jwt import AirflowJwtAuth
from dagtrigger.auth.basic import BasicAuth
from dagtrigger.errors import (
    ApiVersionError,
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConfRejectedError,
    DagNotFoundError,
    ErrorKind,
    TransientTriggerError,
)
from dagtrigger.http import HttpSession
from tests.fake_time import FakeTime
from tests.unit.stub_airflow import RESET, Reply, StubAirflow, closed_port_url
from tools.compat import COMPAT_VERSIONS

FAST = RetryPolicy(deadline=2.0, base_delay=0.02, max_delay=0.1)
V2_RUNS = "/api/v2/dags/etl/dagRuns"
V1_RUNS = "/api/v1/dags/etl/dagRuns"
EXPERIMENTAL_RUNS = "/api/experimental/dags/etl/dag_runs"
RUN_ID = "gcs__finalized__b_x.csv__0d2e324bf5b5915d75c3"
CONF = {"bucket": "b", "name": "x.csv"}
NOTE = "Triggered by dagtrigger: gcs finalized gs://b/x.csv"


@pytest.fixture
def stub() -> Iterator[StubAirflow]:
    with StubAirflow() as server:
        yield server


def client_for(
    url: str,
    *,
    api_version: str | None = "v2",
    auth: Auth | None = None,
    retry: RetryPolicy = FAST,
    session: HttpSession | None = None,
    fake: FakeTime | None = None,
) -> AirflowClient:
    """With `fake`, retries and pacing wait on the fake clock instead of really waiting."""
    transport = HttpTransport(url, auth or NoAuth(), session or HttpSession(timeout=2.0))
    if fake is None:
        return AirflowClient(transport, api_version=api_version, retry=retry)
    return AirflowClient(
        transport,
        api_version=api_version,
        retry=replace(retry, sleep=fake.sleep, clock=fake.clock),
        throttle=Throttle(rate=None, concurrency=10, clock=fake.clock, sleep=fake.sleep),
    )


def run(run_id: str = RUN_ID, state: str = "queued") -> dict[str, Any]:
    return {"dag_id": "etl", "dag_run_id": run_id, "state": state, "conf": CONF}


def created(run_id: str = RUN_ID) -> Reply:
    return Reply(200, run(run_id))


def conflict() -> Reply:
    return Reply(409, {"detail": f"DAG Run with id {RUN_ID} already exists"})


# --- version detection -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_on_the_version_probe_is_a_configuration_error_not_a_version(
    stub: StubAirflow, status: int
) -> None:
    stub.always("GET", "/api/v2/version", Reply(status, None, {"Location": "https://a.example/"}))

    with pytest.raises(ConfigurationError, match=r"redirect to https://a\.example/") as caught:
        client_for(stub.url, api_version=None).trigger("etl", RUN_ID, CONF)

    assert (caught.value.kind, caught.value.status) == (ErrorKind.REDIRECT, status)
    assert stub.received("POST", V2_RUNS) == []


def test_a_redirect_on_the_trigger_is_a_configuration_error(stub: StubAirflow) -> None:
    stub.always("POST", V2_RUNS, Reply(307, None, {"Location": "https://a.example/x"}))

    with pytest.raises(ConfigurationError, match=r"answered 307, a redirect"):
        client_for(stub.url).trigger("etl", RUN_ID, CONF)

    assert len(stub.received("POST", V2_RUNS)) == 1  # not retried: a retry meets the same


def test_airflow_3_is_detected_once_and_gets_the_v2_body(stub: StubAirflow) -> None:
    stub.always("GET", "/api/v2/version", Reply(200, {"version": "3.0.2"}))
    stub.always("POST", V2_RUNS, created())
    client = client_for(stub.url, api_version=None)

    client.trigger("etl", RUN_ID, CONF, note=NOTE)
    client.trigger("etl", RUN_ID + "2", CONF, note=NOTE)

    assert client.api_version == "v2"
    assert len(stub.received("GET", "/api/v2/version")) == 1
    assert stub.received("GET", "/api/v1/version") == []
    bodies = [r.json() for r in stub.received("POST", V2_RUNS)]
    assert bodies[0] == {"conf": CONF, "dag_run_id": RUN_ID, "logical_date": None, "note": NOTE}
    assert "logical_date" in bodies[1]
    assert bodies[1]["logical_date"] is None


def test_a_front_refusing_the_version_probe_is_an_auth_error_not_a_version(
    stub: StubAirflow,
) -> None:
    # The version endpoints are public on Airflow 2 and 3: a 401 comes from a front (IAP, ...).
    stub.always("GET", "/api/v2/version", Reply(401, {"detail": "Invalid IAP credentials"}))
    client = client_for(stub.url, api_version=None)

    with pytest.raises(AuthenticationError) as caught:
        _ = client.api_version
    assert "Invalid IAP credentials" in caught.value.problem
    assert caught.value.fix == NoAuth().hint(401)
    stub.always("GET", "/api/v2/version", Reply(200, {"version": "3.0.0"}))
    assert client.api_version == "v2", "a refusal is not cached"


def test_airflow_2_is_detected_and_gets_the_v1_body(stub: StubAirflow) -> None:
    stub.always("GET", "/api/v1/version", Reply(200, {"version": "2.10.5"}))
    stub.always("POST", V1_RUNS, created())
    client = client_for(stub.url, api_version=None)

    result = client.trigger("etl", RUN_ID, CONF, note=NOTE)
    client.trigger("etl", RUN_ID, CONF, note=NOTE)

    assert (result.outcome, result.dag_run_id, result.state) == ("created", RUN_ID, "queued")
    assert [len(stub.received("GET", p)) for p in ("/api/v2/version", "/api/v1/version")] == [1, 1]
    body = stub.received("POST", V1_RUNS)[0].json()
    assert body == {"conf": CONF, "dag_run_id": RUN_ID}  # no logical_date, no note on Airflow 2


def test_airflow_1_is_detected_and_gets_the_experimental_body(stub: StubAirflow) -> None:
    stub.always("GET", "/api/experimental/test", Reply(200, {"status": "OK"}))
    stub.always(
        "POST",
        EXPERIMENTAL_RUNS,
        Reply(200, {"message": "Created <DagRun etl ...>", "run_id": RUN_ID}),
    )
    client = client_for(stub.url, api_version=None)

    result = client.trigger("etl", RUN_ID, CONF, note=NOTE)
    client.trigger("etl", RUN_ID, CONF, note=NOTE)

    assert (result.outcome, result.dag_run_id) == ("created", RUN_ID)
    assert client.api_version == "experimental"
    assert len(stub.received("GET", "/api/experimental/test")) == 1
    body = stub.received("POST", EXPERIMENTAL_RUNS)[0].json()
    assert body == {"run_id": RUN_ID, "conf": CONF, "replace_microseconds": "false"}


def test_no_rest_api_at_all_says_to_check_the_url(stub: StubAirflow) -> None:
    client = client_for(stub.url, api_version=None)

    with pytest.raises(ApiVersionError) as caught:
        client.trigger("etl", RUN_ID, CONF)

    assert "No Airflow REST API found" in str(caught.value)
    assert "check AIRFLOW_URL" in str(caught.value)


def test_detection_retries_a_server_still_starting(stub: StubAirflow) -> None:
    stub.reply("GET", "/api/v2/version", Reply(503), Reply(200, {"version": "3.0.2"}))

    assert client_for(stub.url, api_version=None).api_version == "v2"
    assert len(stub.received("GET", "/api/v2/version")) == 2


# --- idempotency ------------------------------------------------------------------------------


def test_a_run_that_already_exists_is_a_duplicate(stub: StubAirflow) -> None:
    stub.always("POST", V2_RUNS, conflict())
    stub.always("GET", f"{V2_RUNS}/{RUN_ID}", Reply(200, run(state="success")))

    result = client_for(stub.url).trigger("etl", RUN_ID, CONF)

    assert (result.outcome, result.state, result.attempts) == ("duplicate", "success", 1)
    assert len(stub.received("POST", V2_RUNS)) == 1


def test_a_conflict_over_another_run_is_retried_until_created(stub: StubAirflow) -> None:
    # Airflow 2's 409 for a logical-date clash: the run id itself does not exist yet.
    stub.reply("POST", V2_RUNS, conflict(), created())

    result = client_for(stub.url).trigger("etl", RUN_ID, CONF)

    assert (result.outcome, result.attempts) == ("created", 2)
    assert len(stub.received("GET", f"{V2_RUNS}/{RUN_ID}")) == 1


def test_airflow_1_already_exists_is_a_duplicate(stub: StubAirflow) -> None:
    stub.always(
        "POST",
        EXPERIMENTAL_RUNS,
        Reply(400, {"error": f"Run id {RUN_ID} already exists for dag id etl"}),
    )
    stub.always(
        "GET",
        EXPERIMENTAL_RUNS,
        Reply(
            200, [{"run_id": "other", "state": "success"}, {"run_id": RUN_ID, "state": "running"}]
        ),
    )

    result = client_for(stub.url, api_version="experimental").trigger("etl", RUN_ID, CONF)

    assert (result.outcome, result.state) == ("duplicate", "running")


def test_a_server_error_then_success_creates_the_run(stub: StubAirflow) -> None:
    stub.reply("POST", V2_RUNS, Reply(503, {"detail": "Service Unavailable"}), created())

    result = client_for(stub.url).trigger("etl", RUN_ID, CONF)

    assert (result.outcome, result.attempts) == ("created", 2)
    assert len(stub.received("POST", V2_RUNS)) == 2


def test_a_conflict_after_a_lost_answer_counts_as_created(stub: StubAirflow) -> None:
    # The reset attempt may have created the run: finding it afterwards is our creation.
    stub.reply("POST", V2_RUNS, Reply(503), RESET, conflict())
    stub.always("GET", f"{V2_RUNS}/{RUN_ID}", Reply(200, run()))

    result = client_for(stub.url).trigger("etl", RUN_ID, CONF)

    assert (result.outcome, result.attempts, result.state) == ("created", 3, "queued")
    assert len(stub.received("POST", V2_RUNS)) == 3


def test_a_conflict_after_only_a_reset_counts_as_created(stub: StubAirflow) -> None:
    stub.reply("POST", V2_RUNS, RESET, conflict())
    stub.always("GET", f"{V2_RUNS}/{RUN_ID}", Reply(200, run()))

    result = client_for(stub.url).trigger("etl", RUN_ID, CONF)

    assert (result.outcome, result.attempts) == ("created", 2)


def test_run_ids_are_percent_encoded_in_the_read_path(stub: StubAirflow) -> None:
    run_id = "manual__2024-06-01T00:00:00+00:00~retry.1"
    stub.always("POST", V2_RUNS, conflict())
    stub.always("GET", f"{V2_RUNS}/{run_id}", Reply(200, run(run_id, state="failed")))

    result = client_for(stub.url).trigger("etl", run_id, CONF)

    assert (result.outcome, result.dag_run_id, result.state) == ("duplicate", run_id, "failed")
    [read] = stub.received("GET")
    assert read.path == f"{V2_RUNS}/{run_id}"
    raw_run_id = read.raw_path.rsplit("/", 1)[1]
    assert raw_run_id == "manual__2024-06-01T00%3A00%3A00%2B00%3A00~retry.1"


def test_get_dag_run_of_a_missing_run_is_none(stub: StubAirflow) -> None:
    assert client_for(stub.url).get_dag_run("etl", "nope") is None


# --- transient failures -----------------------------------------------------------------------


def test_throttling_waits_as_long_as_retry_after_says(stub: StubAirflow) -> None:
    stub.reply(
        "POST",
        V2_RUNS,
        Reply(429, {"detail": "Too Many Requests"}, {"Retry-After": "1"}),
        created(),
    )

    fake = FakeTime()
    retry = RetryPolicy(deadline=5.0, base_delay=0.02)

    result = client_for(stub.url, retry=retry, fake=fake).trigger("etl", RUN_ID, CONF)

    assert result.outcome == "created"
    assert len(stub.received("POST", V2_RUNS)) == 2
    # The backoff alone would have waited 0.02 s or less; the spread adds at most 0.25 s.
    assert 1.0 <= sum(fake.sleeps) <= 1.25


@pytest.mark.parametrize(("status", "paced"), [(429, True), (503, False), (500, False)])
def test_only_a_429_slows_every_later_request_of_the_instance(
    stub: StubAirflow, status: int, paced: bool
) -> None:
    """A 429 halves the instance's pace, so that many instances back off together; a 503 or a 500
    is only retried: a front may answer it for one DAG's path alone."""
    stub.reply("POST", V2_RUNS, Reply(status, {"detail": "busy"}))
    stub.always("POST", V2_RUNS, created())
    client = client_for(stub.url, fake=FakeTime())

    client.trigger("etl", RUN_ID, CONF)

    assert (client.throttle.rate is not None) is paced
    assert client.throttle.throttled_count == (1 if paced else 0)


@pytest.mark.parametrize("retry_after", ["20", "1e10", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_long_retry_after_holds_no_trigger_past_its_deadline(
    stub: StubAirflow, retry_after: str
) -> None:
    """The first trigger gives up at once (the platform redelivers); later triggers of the same
    warm process are not held back past their own deadline either, and nothing overflows."""
    stub.reply("POST", V2_RUNS, Reply(429, {"detail": "slow down"}, {"Retry-After": retry_after}))
    stub.always("POST", V2_RUNS, created())
    client = client_for(stub.url, retry=RetryPolicy(deadline=3.0, base_delay=0.02))

    timings = []
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(TransientTriggerError, match=r"gave up after 1 attempt"):
            client.trigger("etl", RUN_ID, CONF)
        timings.append(time.monotonic() - started)

    assert max(timings) < 1.0
    assert len(stub.received("POST", V2_RUNS)) == 1  # nothing sent while the server said wait


def test_an_asctime_retry_after_is_still_retried(stub: StubAirflow) -> None:
    stub.reply("POST", V2_RUNS, Reply(503, None, {"Retry-After": "Sun Nov  6 08:49:37 1994"}))
    stub.always("POST", V2_RUNS, created())

    assert client_for(stub.url).trigger("etl", RUN_ID, CONF).outcome == "created"


def test_an_unreachable_server_is_transient_after_the_deadline() -> None:
    fake = FakeTime()
    retry = RetryPolicy(deadline=1.0, base_delay=0.05, max_delay=0.1)
    client = client_for(closed_port_url(), retry=retry, fake=fake)

    with pytest.raises(TransientTriggerError) as caught:
        client.trigger("etl", RUN_ID, CONF)

    waited = sum(fake.sleeps)
    assert 0.9 <= waited <= 1.0  # kept trying until the next wait would cross 1 s
    message = str(caught.value)
    assert "Connection refused" in message
    assert "gave up after" in message
    assert "the deadline is 1 s" in message
    assert caught.value.kind is ErrorKind.UNREACHABLE


def test_a_server_error_that_lasts_is_transient(stub: StubAirflow) -> None:
    stub.always("POST", V2_RUNS, Reply(502, b"Bad Gateway"))

    with pytest.raises(TransientTriggerError) as caught:
        client_for(stub.url, retry=RetryPolicy(deadline=0.5, base_delay=0.05)).trigger(
            "etl", RUN_ID, CONF
        )

    assert caught.value.status == 502
    assert caught.value.kind is ErrorKind.SERVER_ERROR
    assert "answered 502 to trigger DAG 'etl': Bad Gateway" in str(caught.value)
    assert len(stub.received("POST", V2_RUNS)) >= 2


# --- permanent failures -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 422])
def test_a_refused_conf_is_not_retried(stub: StubAirflow, status: int) -> None:
    detail = "conf: 'date' is a required property"
    stub.always("POST", V2_RUNS, Reply(status, {"detail": detail}))

    with pytest.raises(ConfRejectedError) as caught:
        client_for(stub.url).trigger("etl", RUN_ID, CONF)

    message = str(caught.value)
    assert f"rejected the run for DAG 'etl' ({status}: {detail})" in message
    assert "params" in message
    assert (caught.value.kind, caught.value.status) == (ErrorKind.CONF_REJECTED, status)
    assert len(stub.received("POST", V2_RUNS)) == 1


def test_a_rejected_token_is_renewed_exactly_once(stub: StubAirflow) -> None:
    stub.reply(
        "POST",
        "/auth/token",
        Reply(201, {"access_token": "token-1"}),
        Reply(201, {"access_token": "token-2"}),
    )
    stub.always("POST", V2_RUNS, Reply(401, {"detail": "Not authenticated"}))
    session = HttpSession(timeout=2.0)
    auth = AirflowJwtAuth(stub.url, "trigger-bot", "pw-Secret-9", session)

    with pytest.raises(AuthenticationError) as caught:
        client_for(stub.url, auth=auth, session=session).trigger("etl", RUN_ID, CONF)

    assert len(stub.received("POST", "/auth/token")) == 2
    sent = [r.headers["Authorization"] for r in stub.received("POST", V2_RUNS)]
    assert sent == ["Bearer token-1", "Bearer token-2"]
    message = str(caught.value)
    assert "rejected Airflow user 'trigger-bot'" in message
    assert "pw-Secret-9" not in message


def test_an_expired_token_is_renewed_and_the_run_created(stub: StubAirflow) -> None:
    stub.reply(
        "POST",
        "/auth/token",
        Reply(201, {"access_token": "expired"}),
        Reply(201, {"access_token": "fresh"}),
    )
    stub.reply("POST", V2_RUNS, Reply(403, {"detail": "Invalid JWT token"}), created())
    session = HttpSession(timeout=2.0)
    auth = AirflowJwtAuth(stub.url, "trigger-bot", "pw", session)

    result = client_for(stub.url, auth=auth, session=session).trigger("etl", RUN_ID, CONF)

    assert result.outcome == "created"
    assert stub.received("POST", V2_RUNS)[-1].headers["Authorization"] == "Bearer fresh"


def test_a_forbidden_basic_user_gets_the_auth_hint(stub: StubAirflow) -> None:
    stub.always("POST", V1_RUNS, Reply(403, {"detail": "Forbidden", "status": 403}))
    auth = BasicAuth("viewer", "pw-Secret-9")

    with pytest.raises(AuthorizationError) as caught:
        client_for(stub.url, api_version="v1", auth=auth).trigger("etl", RUN_ID, CONF)

    message = str(caught.value)
    assert "refused basic auth as Airflow user 'viewer' permission to trigger DAG 'etl'" in message
    assert "auth_backends" in message
    assert "pw-Secret-9" not in message
    [request] = stub.received("POST", V1_RUNS)  # a password cannot be renewed: no second try
    expected = base64.b64encode(b"viewer:pw-Secret-9").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_a_missing_dag_is_named(stub: StubAirflow) -> None:
    stub.always(
        "POST",
        "/api/v2/dags/sales.daily/dagRuns",
        Reply(404, {"detail": "DAG with dag_id: 'sales.daily' not found"}),
    )

    with pytest.raises(DagNotFoundError) as caught:
        client_for(stub.url).trigger("sales.daily", RUN_ID, CONF)

    message = str(caught.value)
    assert "DAG 'sales.daily' was not found" in message
    assert "Import errors" in message
    assert (caught.value.kind, caught.value.status) == (ErrorKind.DAG_NOT_FOUND, 404)
    assert caught.value.fix is not None and caught.value.fix.startswith("Check the DAG id")
    assert caught.value.fix not in caught.value.problem
    assert len(stub.received("POST")) == 1


def test_v1_on_airflow_3_says_to_use_v2(stub: StubAirflow) -> None:
    detail = (
        "/api/v1 has been removed in Airflow 3, please use its upgraded version /api/v2 instead."
    )
    stub.always("POST", V1_RUNS, Reply(404, {"detail": detail}))

    with pytest.raises(ApiVersionError) as caught:
        client_for(stub.url, api_version="v1").trigger("etl", RUN_ID, CONF)

    assert "set AIRFLOW_API_VERSION=v2" in str(caught.value)
    assert caught.value.kind is ErrorKind.API_VERSION
    assert caught.value.fix == (
        "on Airflow 3 set AIRFLOW_API_VERSION=v2, or unset it to detect the version."
    )


def test_a_dag_id_is_percent_encoded_in_the_path(stub: StubAirflow) -> None:
    stub.always("POST", "/api/v2/dags/a b/dagRuns", created())

    client_for(stub.url).trigger("a b", RUN_ID, CONF)

    [request] = stub.received("POST")
    assert request.raw_path == "/api/v2/dags/a%20b/dagRuns"


def test_the_response_body_reaches_the_result(stub: StubAirflow) -> None:
    stub.always("POST", V2_RUNS, Reply(200, run(state="running") | {"note": "x"}))

    result = client_for(stub.url).trigger("etl", RUN_ID, CONF)

    assert result.dag_run["note"] == "x"
    assert json.loads(stub.received("POST")[0].body)["conf"] == CONF
    assert result.state == "running"


def test_an_answer_without_a_run_still_names_the_run_created(stub: StubAirflow) -> None:
    stub.always("POST", V2_RUNS, Reply(200, b"<html>OK</html>"))

    result = client_for(stub.url).trigger("etl", RUN_ID, CONF)

    assert (result.outcome, result.dag_run_id) == ("created", RUN_ID)
    assert dict(result.dag_run) == {"dag_run_id": RUN_ID} and result.state is None


CONF_WITH_EVERYTHING = {"name": "Zürich \u2603.csv", "size": 7, "tags": ["a", None], "k": 1.5}


@pytest.mark.parametrize(
    ("version", "path", "body"),
    [
        pytest.param("v2", V2_RUNS, {"conf": CONF_WITH_EVERYTHING, "dag_run_id": RUN_ID,
                                     "logical_date": None, "note": 'a "note"'}, id="airflow3"),
        pytest.param("v1", V1_RUNS, {"conf": CONF_WITH_EVERYTHING, "dag_run_id": RUN_ID},
                     id="airflow2"),
        pytest.param("experimental", EXPERIMENTAL_RUNS, {"conf": CONF_WITH_EVERYTHING,
                     "replace_microseconds": "false", "run_id": RUN_ID}, id="airflow1"),
    ],
)  # fmt: skip
def test_the_body_sent_is_exactly_what_each_api_version_takes(
    stub: StubAirflow, version: str, path: str, body: dict[str, Any]
) -> None:
    """Airflow 3 refuses unknown fields with 422: only what each version knows is sent."""
    stub.always("POST", path, created())

    client_for(stub.url, api_version=version).trigger(
        "etl", RUN_ID, CONF_WITH_EVERYTHING, note='a "note"'
    )

    (sent,) = stub.received("POST", path)
    assert json.loads(sent.body) == body


# What each Airflow release validates a trigger body against, written from the release itself by
# `python -m tools.compat --write-schemas tests/unit/airflow_schemas VERSION...`: Airflow 3's
# pydantic model (extra fields forbidden, so an unknown one gets 422) and the fields Airflow 2's
# marshmallow schema loads (it refuses unknown and read-only ones with 400).
SCHEMAS = Path(__file__).resolve().parent / "airflow_schemas"
SCHEMA_FILES = sorted(SCHEMAS.glob("trigger-body-*.json"))


def _schema_version(path: Path) -> str:
    return path.stem.removeprefix("trigger-body-")


def _trigger_on(stub: StubAirflow, airflow_version: str) -> dict[str, Any]:
    """The body a client that detected `airflow_version` sends to trigger a run."""
    api = "v2" if airflow_version.startswith("3.") else "v1"
    path = V2_RUNS if api == "v2" else V1_RUNS
    stub.always("GET", f"/api/{api}/version", Reply(200, {"version": airflow_version}))
    stub.always("POST", path, created())

    client_for(stub.url, api_version=None).trigger(
        "etl", RUN_ID, CONF_WITH_EVERYTHING, note='a "note"'
    )

    (sent,) = stub.received("POST", path)
    body: dict[str, Any] = json.loads(sent.body)
    return body


@pytest.mark.parametrize("airflow_version", COMPAT_VERSIONS)
def test_every_airflow_version_users_run_is_sent_the_exact_body_of_its_api(
    stub: StubAirflow, airflow_version: str
) -> None:
    """No partition_key (3.2+) nor bundle_version: fields a release lacks would get 422."""
    body = _trigger_on(stub, airflow_version)

    if airflow_version.startswith("3."):
        assert body == {
            "conf": CONF_WITH_EVERYTHING,
            "dag_run_id": RUN_ID,
            "logical_date": None,
            "note": 'a "note"',
        }
    else:
        assert body == {"conf": CONF_WITH_EVERYTHING, "dag_run_id": RUN_ID}


def test_the_schemas_of_the_oldest_and_newest_release_of_each_line_are_kept() -> None:
    assert {"2.6.3", "2.11.2", "3.0.6", "3.3.2"} <= {_schema_version(p) for p in SCHEMA_FILES}


@pytest.mark.parametrize("schema_file", SCHEMA_FILES, ids=_schema_version)
def test_the_body_sent_is_within_the_schema_of_that_airflow_release(
    stub: StubAirflow, schema_file: Path
) -> None:
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.Draft202012Validator(schema)

    body = _trigger_on(stub, _schema_version(schema_file))

    assert list(validator.iter_errors(body)) == []
    assert not validator.is_valid(body | {"bundle_version": None}), "the schema is not strict"
