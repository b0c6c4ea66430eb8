"""The MWAA stand-in, exercised by boto3 unmodified and by urllib3 over real TLS.

No Airflow: the environments forward to a tiny upstream that answers like Airflow's REST API
(and checks the admin's Authorization header the stand-in must add).
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.auth
import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.standins._http import LoopbackServer, Request, Response, json_response
from tests.standins.mwaa import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    NO_AIRFLOW_ROLE,
    MwaaEnvironment,
    MwaaStandin,
)

ADMIN = {"Authorization": "Basic YWRtaW46YWRtaW4="}  # admin:admin
OTHER_KEY, OTHER_SECRET = "AKIDOTHERCALLER", "another-secret"
DAG_RUN = {"dag_id": "load_sales", "dag_run_id": "gcs__x", "state": "queued", "conf": {}}


class FakeAirflow(LoopbackServer):
    """Answers `/api/v{1,2}/dags/{dag}/dagRuns` like Airflow: `missing` → 404, `dup` → 409,
    `locked` → 500 "database is locked", `text` → a plain-text 502; 401 without ADMIN."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Request] = []

    def handle(self, request: Request) -> Response:
        self.received.append(request)
        if request.header("Authorization") != ADMIN["Authorization"]:
            return json_response(401, {"title": "Unauthorized", "status": 401})
        parts = request.path.split("/")  # "", "api", "v1", "dags", DAG, "dagRuns"
        dag = parts[4] if len(parts) > 4 else ""
        if dag == "missing":
            return json_response(404, {"title": "DAG not found", "status": 404, "detail": dag})
        if dag == "dup":
            return json_response(409, {"detail": "Unique constraint violation", "status": 409})
        if dag == "locked":
            return json_response(500, {"detail": "database is locked", "status": 500})
        if dag == "text":
            return Response(502, b"Bad Gateway", {"Content-Type": "text/plain"})
        body = json.loads(request.body) if request.body else None
        return json_response(200, {**DAG_RUN, "received": body, "target": request.target})


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_MWAA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def airflow() -> Iterator[FakeAirflow]:
    with FakeAirflow() as server:
        yield server


def environments(airflow: FakeAirflow) -> dict[str, MwaaEnvironment]:
    return {
        "etl2": MwaaEnvironment("etl2", airflow.url, "2.10.3", lambda: dict(ADMIN)),
        "etl3": MwaaEnvironment("etl3", airflow.url, "3.0.6", lambda: dict(ADMIN)),
    }


@pytest.fixture
def mwaa(airflow: FakeAirflow) -> Iterator[MwaaStandin]:
    credentials = {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY, OTHER_KEY: OTHER_SECRET}
    with MwaaStandin(environments(airflow), credentials=credentials) as server:
        yield server


@pytest.fixture
def pool(mwaa: MwaaStandin) -> Iterator[urllib3.PoolManager]:
    """Trusts the stand-in's CA (and only it) for the HTTPS web fronts."""
    manager = urllib3.PoolManager(ca_certs=mwaa.ca_file, cert_reqs="CERT_REQUIRED")
    yield manager
    manager.clear()


@pytest.fixture
def plain() -> Iterator[urllib3.PoolManager]:
    """For hand-made requests to the API (plain HTTP)."""
    manager = urllib3.PoolManager(retries=False)
    yield manager
    manager.clear()


def mwaa_client(
    standin: MwaaStandin,
    key: str = DEFAULT_ACCESS_KEY,
    secret: str = DEFAULT_SECRET_KEY,
    region: str | None = None,
) -> Any:
    return boto3.client(
        "mwaa",
        endpoint_url=standin.url,
        region_name=region or standin.region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(
            inject_host_prefix=False, retries={"mode": "standard", "total_max_attempts": 1}
        ),
    )


@pytest.fixture
def client(mwaa: MwaaStandin) -> Iterator[Any]:
    made = mwaa_client(mwaa)
    yield made
    made.close()


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = excinfo.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


# ---- InvokeRestApi ----


@pytest.mark.parametrize(("name", "prefix"), [("etl2", "/api/v1"), ("etl3", "/api/v2")])
def test_invoke_rest_api_forwards_to_the_versions_api(
    mwaa: MwaaStandin, airflow: FakeAirflow, client: Any, name: str, prefix: str
) -> None:
    answer = client.invoke_rest_api(
        Name=name,
        Path="/dags/load_sales/dagRuns",
        Method="POST",
        QueryParameters={"limit": 5, "state": ["queued", "running"], "flag": True},
        Body={"dag_run_id": "gcs__x", "conf": {"bucket": "acme"}},
    )

    assert answer["RestApiStatusCode"] == 200
    assert answer["RestApiResponse"]["received"] == {
        "dag_run_id": "gcs__x",
        "conf": {"bucket": "acme"},
    }
    sent = airflow.received[-1]
    assert (sent.method, sent.path) == ("POST", f"{prefix}/dags/load_sales/dagRuns")
    assert parse_qs(urlsplit(sent.target).query) == {
        "limit": ["5"], "state": ["queued", "running"], "flag": ["true"]
    }  # fmt: skip
    assert sent.header("Authorization") == ADMIN["Authorization"]
    assert sent.header("Content-Type") == "application/json"
    assert mwaa.invocations == [(name, "POST", "/dags/load_sales/dagRuns")]


def test_get_is_sent_without_a_body(airflow: FakeAirflow, client: Any) -> None:
    client.invoke_rest_api(Name="etl3", Path="/dags/load_sales/dagRuns", Method="GET", Body={})

    assert airflow.received[-1].method == "GET"
    assert airflow.received[-1].body == b""


@pytest.mark.parametrize(("dag", "status"), [("missing", 404), ("dup", 409)])
def test_airflow_4xx_is_a_rest_api_client_exception(client: Any, dag: str, status: int) -> None:
    with pytest.raises(client.exceptions.RestApiClientException) as excinfo:
        client.invoke_rest_api(Name="etl2", Path=f"/dags/{dag}/dagRuns", Method="POST", Body={})

    response = excinfo.value.response
    assert error_of(excinfo) == (400, "RestApiClientException", "")
    assert response["RestApiStatusCode"] == status
    assert response["RestApiResponse"]["status"] == status


def test_airflow_5xx_is_a_rest_api_server_exception(client: Any) -> None:
    with pytest.raises(client.exceptions.RestApiServerException) as excinfo:
        client.invoke_rest_api(Name="etl3", Path="/dags/locked/dagRuns", Method="POST", Body={})

    assert error_of(excinfo) == (400, "RestApiServerException", "")
    assert excinfo.value.response["RestApiStatusCode"] == 500
    assert excinfo.value.response["RestApiResponse"]["detail"] == "database is locked"
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 0


def test_a_body_that_is_not_json_arrives_as_text(client: Any) -> None:
    with pytest.raises(client.exceptions.RestApiServerException) as excinfo:
        client.invoke_rest_api(Name="etl3", Path="/dags/text/dagRuns", Method="POST", Body={})

    assert excinfo.value.response["RestApiStatusCode"] == 502
    assert excinfo.value.response["RestApiResponse"] == "Bad Gateway"


def test_unknown_environment_is_resource_not_found(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.invoke_rest_api(Name="nope", Path="/dags", Method="GET")

    assert error_of(excinfo) == (404, "ResourceNotFoundException", "Environment nope not found.")


@pytest.mark.parametrize(
    ("path", "method", "fragment"),
    [
        ("/dags/" + "x" * 60, "GET", "at 'path' failed to satisfy constraint"),
        ("/dags", "TRACE", "Member must satisfy enum value set: [GET, PUT, POST, PATCH, DELETE]"),
    ],
)
def test_invalid_input_is_a_validation_exception(
    airflow: FakeAirflow, client: Any, path: str, method: str, fragment: str
) -> None:
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.invoke_rest_api(Name="etl2", Path=path, Method=method)

    status, _, message = error_of(excinfo)
    assert status == 400
    assert message.startswith("1 validation error detected: ")
    assert fragment in message
    assert airflow.received == []


def test_unreachable_airflow_is_an_internal_server_exception(airflow: FakeAirflow) -> None:
    gone = MwaaEnvironment("gone", "http://127.0.0.1:9", "3.0.6", lambda: dict(ADMIN))
    with MwaaStandin({"gone": gone}) as standin:
        client = mwaa_client(standin)
        with pytest.raises(client.exceptions.InternalServerException) as excinfo:
            client.invoke_rest_api(Name="gone", Path="/dags", Method="GET")
        client.close()

    assert error_of(excinfo)[:2] == (500, "InternalServerException")


# ---- SigV4 and IAM ----


def test_a_wrong_secret_is_rejected(mwaa: MwaaStandin, airflow: FakeAirflow) -> None:
    client = mwaa_client(mwaa, secret="not-the-secret")
    with pytest.raises(ClientError) as excinfo:
        client.invoke_rest_api(Name="etl2", Path="/dags/load_sales/dagRuns", Method="GET")
    client.close()

    status, code, message = error_of(excinfo)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("The request signature we calculated does not match")
    assert "The Canonical String for this request should have been" in message
    assert airflow.received == []
    assert mwaa.invocations == []


def test_an_unknown_access_key_is_unrecognized(mwaa: MwaaStandin) -> None:
    client = mwaa_client(mwaa, key="AKIDNOBODY", secret="whatever")
    with pytest.raises(ClientError) as excinfo:
        client.get_environment(Name="etl2")
    client.close()

    assert error_of(excinfo) == (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_a_signature_for_another_region_is_rejected(mwaa: MwaaStandin) -> None:
    client = mwaa_client(mwaa, region="us-east-1")
    with pytest.raises(ClientError) as excinfo:
        client.get_environment(Name="etl2")
    client.close()

    assert error_of(excinfo) == (
        403,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region. ",
    )


def test_a_signature_for_another_service_is_rejected(
    mwaa: MwaaStandin, plain: urllib3.PoolManager
) -> None:
    request = AWSRequest(method="GET", url=f"{mwaa.url}/environments/etl2")
    credentials = Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    SigV4Auth(credentials, "execute-api", mwaa.region).add_auth(request)
    answer = plain.request("GET", request.url, headers=dict(request.headers.items()))

    assert answer.status == 403
    assert answer.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert answer.json() == {
        "message": "Credential should be scoped to correct service: 'airflow'. "
    }


def test_a_stale_signature_is_rejected(mwaa: MwaaStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    ten_minutes_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: ten_minutes_ago)
    client = mwaa_client(mwaa)
    with pytest.raises(ClientError) as excinfo:
        client.get_environment(Name="etl2")
    client.close()

    status, code, message = error_of(excinfo)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("Signature expired: ")


@pytest.mark.parametrize(
    ("headers", "code", "message"),
    [
        ({}, "MissingAuthenticationTokenException", "Missing Authentication Token"),
        (
            {"Authorization": "Bearer abc"},
            "IncompleteSignatureException",
            "Authorization header requires 'Credential' parameter. Authorization header requires "
            "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
            "header. Authorization=Bearer abc",
        ),
    ],
)
def test_unsigned_requests_are_refused(
    mwaa: MwaaStandin, plain: urllib3.PoolManager, headers: dict[str, str], code: str, message: str
) -> None:
    answer = plain.request("POST", f"{mwaa.url}/restapi/etl2", body=b"{}", headers=headers)

    assert answer.status == 403
    assert answer.headers["x-amzn-ErrorType"] == code
    assert answer.json() == {"message": message}


def test_a_key_not_allowed_gets_access_denied(airflow: FakeAirflow) -> None:
    credentials = {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY, OTHER_KEY: OTHER_SECRET}
    with MwaaStandin(
        environments(airflow), credentials=credentials, allowed={OTHER_KEY}
    ) as standin:
        client = mwaa_client(standin)
        with pytest.raises(client.exceptions.AccessDeniedException) as invoke:
            client.invoke_rest_api(Name="etl2", Path="/dags/load_sales/dagRuns", Method="GET")
        with pytest.raises(client.exceptions.AccessDeniedException) as web:
            client.create_web_login_token(Name="etl3")
        client.close()
        allowed = mwaa_client(standin, OTHER_KEY, OTHER_SECRET)
        assert allowed.create_web_login_token(Name="etl3")["WebToken"]
        allowed.close()

    assert error_of(invoke) == (403, "AccessDeniedException", NO_AIRFLOW_ROLE)
    assert invoke.value.response["Message"] == NO_AIRFLOW_ROLE
    assert error_of(web) == (
        403,
        "AccessDeniedException",
        f"User: arn:aws:iam::123456789012:user/{DEFAULT_ACCESS_KEY} is not authorized to "
        "perform: airflow:CreateWebLoginToken on resource: "
        "arn:aws:airflow:eu-west-1:123456789012:role/etl3/Op",
    )
    assert airflow.received == []


def test_bare_boto3_client_works_under_client_env(
    mwaa: MwaaStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in mwaa.client_env().items():
        monkeypatch.setenv(name, value)
    client = boto3.client("mwaa")

    answer = client.invoke_rest_api(Name="etl3", Path="/dags/load_sales/dagRuns", Method="GET")
    client.close()

    assert answer["RestApiStatusCode"] == 200


# ---- rate limit and latency ----


def test_above_the_rate_limit_calls_are_throttled(airflow: FakeAirflow) -> None:
    with MwaaStandin(environments(airflow), rate_limit=2) as standin:
        client = mwaa_client(standin)
        outcomes = []
        for _ in range(5):
            try:
                client.invoke_rest_api(Name="etl3", Path="/dags/load_sales/dagRuns", Method="GET")
                outcomes.append("ok")
            except ClientError as exc:
                outcomes.append(exc.response["Error"]["Code"])
                status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
                message = exc.response["Error"]["Message"]
        time.sleep(0.6)  # the bucket refills at 2 a second
        client.invoke_rest_api(Name="etl3", Path="/dags/load_sales/dagRuns", Method="GET")
        client.close()

        assert outcomes[:2] == ["ok", "ok"]
        assert "ThrottlingException" in outcomes
        assert (status, message) == (429, "Rate exceeded")
        assert standin.throttled == outcomes.count("ThrottlingException")
        assert len(standin.invocations) == outcomes.count("ok") + 1


def test_extra_latency_delays_invoke_rest_api(airflow: FakeAirflow) -> None:
    with MwaaStandin(environments(airflow), extra_latency=0.3) as standin:
        client = mwaa_client(standin)
        started = time.monotonic()
        client.invoke_rest_api(Name="etl2", Path="/dags/load_sales/dagRuns", Method="GET")
        elapsed = time.monotonic() - started
        client.close()

    assert elapsed >= 0.3


# ---- GetEnvironment ----


def test_get_environment_describes_it(mwaa: MwaaStandin, client: Any) -> None:
    environment = client.get_environment(Name="etl3")["Environment"]

    assert environment["Name"] == "etl3"
    assert environment["Arn"] == "arn:aws:airflow:eu-west-1:123456789012:environment/etl3"
    assert environment["AirflowVersion"] == "3.0.6"
    assert environment["Status"] == "AVAILABLE"
    assert environment["WebserverUrl"] == mwaa.web_hostname("etl3")
    assert environment["WebserverAccessMode"] == "PUBLIC_ONLY"
    assert isinstance(environment["CreatedAt"], datetime.datetime)
    assert mwaa.get_environment_calls == 1


# ---- web login ----


def login(pool: urllib3.PoolManager, host: str, path: str, token: str) -> Any:
    return pool.request(
        "POST",
        f"https://{host}{path}",
        fields={"token": token},
        encode_multipart=False,
        redirect=False,
    )


def test_airflow2_web_login_gives_a_session_cookie(
    mwaa: MwaaStandin, airflow: FakeAirflow, client: Any, pool: urllib3.PoolManager
) -> None:
    issued = client.create_web_login_token(Name="etl2")
    host = issued["WebServerHostname"]
    assert issued["IamIdentity"] == issued["AirflowIdentity"] == f"user/{DEFAULT_ACCESS_KEY}"

    answer = login(pool, host, "/aws_mwaa/login", issued["WebToken"])
    assert answer.status == 302
    assert answer.headers["Location"] == "/"
    set_cookie = answer.headers["Set-Cookie"]
    assert {"Secure", "HttpOnly", "Path=/"} <= {part.strip() for part in set_cookie.split(";")}
    session = SimpleCookie(set_cookie)["session"].value

    runs = pool.request(
        "GET",
        f"https://{host}/api/v1/dags/load_sales/dagRuns",
        headers={"Cookie": f"session={session}"},
    )
    assert runs.status == 200
    assert airflow.received[-1].header("Authorization") == ADMIN["Authorization"]
    assert airflow.received[-1].header("Cookie") is None

    assert pool.request("GET", f"https://{host}/api/v1/dags").status == 401
    assert login(pool, host, "/aws_mwaa/login", issued["WebToken"]).status == 403  # used once
    assert login(pool, host, "/pluginsv2/aws_mwaa/login", "x").status == 404  # Airflow 3's path
    mwaa.expire_sessions()
    expired = pool.request(
        "GET", f"https://{host}/api/v1/dags", headers={"Cookie": f"session={session}"}
    )
    assert expired.status == 401
    assert expired.json()["title"] == "Unauthorized"
    assert mwaa.logins == 1


def test_airflow3_web_login_gives_a_jwt_cookie_used_as_bearer(
    mwaa: MwaaStandin, airflow: FakeAirflow, client: Any, pool: urllib3.PoolManager
) -> None:
    issued = client.create_web_login_token(Name="etl3")
    host = issued["WebServerHostname"]
    assert host == mwaa.web_hostname("etl3") != mwaa.web_hostname("etl2")

    answer = login(pool, host, "/pluginsv2/aws_mwaa/login", issued["WebToken"])
    assert answer.status == 302
    jwt = SimpleCookie(answer.headers["Set-Cookie"])["_token"].value
    assert jwt.count(".") == 2

    url = f"https://{host}/api/v2/dags/load_sales/dagRuns"
    runs = pool.request(
        "POST",
        url,
        body=b'{"logical_date": null}',
        headers={"Authorization": f"Bearer {jwt}", "Content-Type": "application/json"},
    )
    assert runs.status == 200
    assert runs.json()["received"] == {"logical_date": None}
    assert airflow.received[-1].header("Authorization") == ADMIN["Authorization"]

    assert pool.request("GET", url).json() == {"detail": "Not authenticated"}
    forged = pool.request("GET", url, headers={"Authorization": f"Bearer {jwt[:-4]}AAAA"})
    assert (forged.status, forged.json()) == (403, {"detail": "Invalid JWT token"})
    assert login(pool, host, "/pluginsv2/aws_mwaa/login", issued["WebToken"]).status == 403
    assert login(pool, host, "/aws_mwaa/login", "x").status == 404  # Airflow 2's path
    mwaa.expire_sessions()
    expired = pool.request("GET", url, headers={"Authorization": f"Bearer {jwt}"})
    assert (expired.status, expired.json()) == (401, {"detail": "Token Expired"})
    assert mwaa.logins == 1


def test_a_web_token_is_bound_to_its_environment_and_expires(airflow: FakeAirflow) -> None:
    with MwaaStandin(environments(airflow), web_token_ttl=0.2) as standin:
        client = mwaa_client(standin)
        for_etl3 = client.create_web_login_token(Name="etl3")["WebToken"]
        late = client.create_web_login_token(Name="etl2")["WebToken"]
        client.close()
        tls = urllib3.PoolManager(ca_certs=standin.ca_file)
        wrong_front = login(tls, standin.web_hostname("etl2"), "/aws_mwaa/login", for_etl3)
        time.sleep(0.3)
        expired = login(tls, standin.web_hostname("etl2"), "/aws_mwaa/login", late)
        tls.clear()

        assert (wrong_front.status, expired.status) == (403, 403)
        assert standin.web_tokens_issued == 2
        assert standin.logins == 0


def test_the_web_front_is_trusted_through_ssl_cert_file_only(
    mwaa: MwaaStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    url = f"https://{mwaa.web_hostname('etl2')}/"
    untrusted = urllib3.PoolManager(retries=False)
    with pytest.raises(urllib3.exceptions.SSLError):
        untrusted.request("GET", url)
    untrusted.clear()

    monkeypatch.setenv("SSL_CERT_FILE", mwaa.ca_file)
    trusted = urllib3.PoolManager(retries=False)
    assert trusted.request("GET", url).status == 200
    trusted.clear()
