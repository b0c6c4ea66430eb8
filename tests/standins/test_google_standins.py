"""The Google stand-ins, exercised by google-auth unmodified and by plain HTTP.

No Airflow: the fronts forward to a tiny upstream that echoes what it received.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google.auth
import pytest
import urllib3
from google.auth import compute_engine, crypt, exceptions
from google.auth import jwt as google_jwt
from google.auth.credentials import TokenState
from google.auth.transport.urllib3 import Request as GoogleRequest
from google.oauth2 import id_token, service_account

from tests.standins._http import LoopbackServer, Request, Response, json_response
from tests.standins.google import (
    CLOUD_PLATFORM,
    DEFAULT_ACCOUNT,
    INVALID_CREDENTIALS,
    MISSING_CREDENTIALS,
    ComposerEnvironmentsApi,
    ComposerFront,
    GoogleTokenServer,
    IapFront,
    Identity,
    ServiceAccount,
    composer_environment,
    parse_jwt,
)
from tests.standins.google_jwt import new_rsa_key, sign_jwt

AIRFLOW_BASIC = {"Authorization": "Basic YWRtaW46YWRtaW4="}  # admin:admin
IAP_CLIENT_ID = "123456789012-standin.apps.googleusercontent.com"
OTHER = ServiceAccount("intruder@elsewhere.iam.gserviceaccount.com", "998877665544332211000")
ENVIRONMENT = "projects/acme-data/locations/us-central1/environments/etl"


class Echo(LoopbackServer):
    """The upstream: answers what it received; `/status/N` answers N with `Retry-After: 7`."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Request] = []

    def handle(self, request: Request) -> Response:
        self.received.append(request)
        status = int(request.path.removeprefix("/status/")) if "/status/" in request.path else 200
        return json_response(
            status,
            {
                "method": request.method,
                "target": request.target,
                "headers": request.headers,
                "body": request.body.decode(),
            },
            {"Retry-After": "7"} if status != 200 else None,
        )


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # no gcloud user's ADC


@pytest.fixture
def tokens() -> Iterator[GoogleTokenServer]:
    with GoogleTokenServer() as server:
        yield server


@pytest.fixture
def pool() -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager()
    yield manager
    manager.clear()


@pytest.fixture
def request_(pool: urllib3.PoolManager) -> GoogleRequest:
    return GoogleRequest(pool)


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as server:
        yield server


def sa_credentials(key: dict[str, str], **kwargs: Any) -> service_account.Credentials:
    return service_account.Credentials.from_service_account_info(key, **kwargs)


def get(pool: urllib3.PoolManager, url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return pool.request("GET", url, headers=headers, redirect=False)


# ---- token endpoint ----


def test_service_account_credentials_get_an_access_token(
    tokens: GoogleTokenServer, request_: GoogleRequest
) -> None:
    credentials = sa_credentials(tokens.service_account_key(), scopes=[CLOUD_PLATFORM])
    credentials.refresh(request_)

    identity = tokens.verify_access_token(credentials.token)
    assert identity == Identity(
        DEFAULT_ACCOUNT.email, DEFAULT_ACCOUNT.client_id, identity.expiry, (CLOUD_PLATFORM,)
    )
    assert 3590 < identity.expiry - time.time() <= 3600
    assert credentials.expiry is not None and credentials.valid
    assert (tokens.access_tokens_issued, tokens.id_tokens_issued) == (1, 0)


def test_fetch_id_token_with_a_key_file(
    tokens: GoogleTokenServer,
    request_: GoogleRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(tokens.service_account_key(OTHER.email, OTHER.client_id)))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))

    token = id_token.fetch_id_token(request_, "https://airflow.example.com")

    identity = tokens.verify_id_token(token, "https://airflow.example.com")
    assert isinstance(identity, Identity)
    assert (identity.email, identity.client_id) == OTHER
    claims = id_token.verify_token(
        token, request_, audience="https://airflow.example.com", certs_url=tokens.certs_url
    )
    assert claims["iss"] == "https://accounts.google.com"
    assert (claims["email"], claims["sub"], claims["email_verified"]) == (*OTHER, True)
    assert claims["exp"] - claims["iat"] == 3600
    assert (tokens.access_tokens_issued, tokens.id_tokens_issued) == (0, 1)


def test_a_key_the_server_did_not_issue_is_refused_like_google(
    tokens: GoogleTokenServer, request_: GoogleRequest
) -> None:
    with GoogleTokenServer() as elsewhere:
        foreign = {**elsewhere.service_account_key(), "token_uri": tokens.token_uri}
    tampered = {**tokens.service_account_key(), "private_key": foreign["private_key"]}

    for key in (foreign, tampered):
        with pytest.raises(exceptions.RefreshError) as refused:
            sa_credentials(key, scopes=[CLOUD_PLATFORM]).refresh(request_)
        assert refused.value.args[0] == "invalid_grant: Invalid JWT Signature."
    assert tokens.access_tokens_issued == 0


def test_credentials_without_scopes_are_refused(
    tokens: GoogleTokenServer, request_: GoogleRequest
) -> None:
    with pytest.raises(exceptions.RefreshError, match="invalid_scope: Empty or missing scope"):
        sa_credentials(tokens.service_account_key()).refresh(request_)


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"iat": -60, "exp": 7200}, "Invalid JWT: Token must be a short-lived token (60 minutes)"),
        (
            {"iat": -7200, "exp": -3600},
            "Invalid JWT: Token must be a short-lived token (60 minutes)",
        ),
        ({"aud": "https://example.com/token"}, "Invalid JWT: Failed audience check."),
        ({"iss": OTHER.email}, "Invalid JWT Signature."),
    ],
    ids=["too-long", "expired", "wrong-aud", "wrong-iss"],
)
def test_assertions_are_checked_like_google(
    tokens: GoogleTokenServer,
    pool: urllib3.PoolManager,
    claims: dict[str, Any],
    description: str,
) -> None:
    key = tokens.service_account_key()
    now = int(time.time())
    payload = {
        "iss": key["client_email"],
        "aud": "https://oauth2.googleapis.com/token",
        "scope": CLOUD_PLATFORM,
        "iat": now,
        "exp": now + 3600,
        **{
            name: now + value if name in ("iat", "exp") else value for name, value in claims.items()
        },
    }
    signer = crypt.RSASigner.from_string(key["private_key"], key["private_key_id"])
    assertion = google_jwt.encode(signer, payload).decode()

    answer = pool.request(
        "POST",
        tokens.token_uri,
        fields={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": assertion,
        },
        encode_multipart=False,
    )

    assert answer.status == 400
    assert answer.json()["error"] == "invalid_grant"
    assert answer.json()["error_description"].startswith(description)


def test_short_lived_tokens_expire_and_are_renewed(request_: GoogleRequest) -> None:
    with GoogleTokenServer(access_token_lifetime=240) as tokens:
        credentials = sa_credentials(tokens.service_account_key(), scopes=[CLOUD_PLATFORM])
        credentials.refresh(request_)
        first = credentials.token
        assert tokens.verify_access_token(first) is not None
        assert credentials.token_state == TokenState.FRESH  # 240 s > google-auth's 225 s margin

        tokens.expire_access_tokens()
        assert tokens.verify_access_token(first) is None

        credentials.refresh(request_)
        assert credentials.token != first
        assert tokens.verify_access_token(credentials.token) is not None
        assert tokens.access_tokens_issued == 2

    with GoogleTokenServer(access_token_lifetime=130) as tokens:
        credentials = sa_credentials(tokens.service_account_key(), scopes=[CLOUD_PLATFORM])
        credentials.refresh(request_)
        # Below google-auth's refresh margin a token is stale at once: callers renew every time.
        assert credentials.token_state == TokenState.STALE


# ---- metadata server ----


def test_compute_engine_credentials_through_the_metadata_server(
    tokens: GoogleTokenServer, request_: GoogleRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens.patch_google_auth_metadata(monkeypatch)

    credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM], request=request_)
    assert isinstance(credentials, compute_engine.Credentials)
    assert project == "acme-data"
    credentials.refresh(request_)

    identity = tokens.verify_access_token(credentials.token)
    assert identity is not None
    assert (identity.email, identity.client_id, identity.scopes) == (
        *DEFAULT_ACCOUNT,
        (CLOUD_PLATFORM,),
    )
    assert credentials.service_account_email == DEFAULT_ACCOUNT.email
    assert tokens.access_tokens_issued == 1


def test_id_tokens_from_the_metadata_server(
    request_: GoogleRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GoogleTokenServer(metadata_identity=OTHER) as tokens:
        tokens.patch_google_auth_metadata(monkeypatch)

        credentials = compute_engine.IDTokenCredentials(
            request_, IAP_CLIENT_ID, use_metadata_identity_endpoint=True
        )
        credentials.refresh(request_)
        fetched = id_token.fetch_id_token(request_, "https://run.example.com")  # pings, then asks

        for token, audience in (
            (credentials.token, IAP_CLIENT_ID),
            (fetched, "https://run.example.com"),
        ):
            identity = tokens.verify_id_token(token, audience)
            assert isinstance(identity, Identity)
            assert (identity.email, identity.client_id) == OTHER
        assert (
            tokens.verify_id_token(fetched, IAP_CLIENT_ID)
            == "wrong audience 'https://run.example.com'"
        )
        assert tokens.id_tokens_issued == 2


def test_the_metadata_server_wants_its_flavor_header(
    tokens: GoogleTokenServer, pool: urllib3.PoolManager
) -> None:
    url = f"{tokens.url}/computeMetadata/v1/project/project-id"

    refused = pool.request("GET", url)
    answered = pool.request("GET", url, headers={"Metadata-Flavor": "Google"})
    ping = pool.request("GET", tokens.url + "/", headers={"Metadata-Flavor": "Google"})

    assert refused.status == 403 and b"Missing Metadata-Flavor:Google header" in refused.data
    assert (answered.status, answered.data) == (200, b"acme-data")
    assert (ping.status, ping.headers["Metadata-Flavor"]) == (200, "Google")
    assert tokens.access_tokens_issued == 0


# ---- Composer 2/3 front ----


def test_composer_front_forwards_with_the_airflow_credentials(
    tokens: GoogleTokenServer, request_: GoogleRequest, pool: urllib3.PoolManager, echo: Echo
) -> None:
    credentials = sa_credentials(tokens.service_account_key(), scopes=[CLOUD_PLATFORM])
    credentials.refresh(request_)
    with ComposerFront(echo.url, tokens, lambda: AIRFLOW_BASIC, {DEFAULT_ACCOUNT.email}) as front:
        answer = pool.request(
            "POST",
            front.url + "/api/v2/dags/load_sales/dagRuns?x=1",
            body=b'{"conf": {}}',
            headers={
                "Authorization": f"Bearer {credentials.token}",
                "Content-Type": "application/json",
            },
        )
        slow = pool.request(
            "GET",
            front.url + "/status/429",
            headers={"Authorization": f"Bearer {credentials.token}"},
            retries=False,  # urllib3 would honour Retry-After itself
        )

    got = answer.json()
    assert answer.status == 200
    assert (got["method"], got["target"], got["body"]) == (
        "POST",
        "/api/v2/dags/load_sales/dagRuns?x=1",
        '{"conf": {}}',
    )
    assert got["headers"]["authorization"] == AIRFLOW_BASIC["Authorization"]
    assert got["headers"]["content-type"] == "application/json"
    assert (slow.status, slow.headers["Retry-After"]) == (429, "7")
    assert front.requests_seen == [
        ("POST", "/api/v2/dags/load_sales/dagRuns", DEFAULT_ACCOUNT.email),
        ("GET", "/status/429", DEFAULT_ACCOUNT.email),
    ]


@pytest.mark.parametrize(
    ("make_token", "status", "message"),
    [
        (lambda t: None, 401, MISSING_CREDENTIALS),
        (lambda t: "ya29.not-issued-here", 401, INVALID_CREDENTIALS),
        (lambda t: t.issue_access_token(lifetime=-1), 401, INVALID_CREDENTIALS),
        (lambda t: t.issue_id_token(audience="x"), 401, INVALID_CREDENTIALS),
        (
            lambda t: t.issue_access_token(OTHER.email),
            403,
            "Permission 'composer.environments.get' denied",
        ),
        (
            lambda t: t.issue_access_token(scopes=("openid",)),
            403,
            "Request had insufficient authentication scopes.",
        ),
    ],
    ids=["missing", "unknown", "expired", "id-token", "not-allowed", "no-cloud-platform-scope"],
)
def test_composer_front_refuses_like_google(
    tokens: GoogleTokenServer,
    pool: urllib3.PoolManager,
    echo: Echo,
    make_token: Any,
    status: int,
    message: str,
) -> None:
    with ComposerFront(echo.url, tokens, lambda: AIRFLOW_BASIC, {DEFAULT_ACCOUNT.email}) as front:
        answer = get(pool, front.url + "/api/v2/version", make_token(tokens))

    error = answer.json()["error"]
    assert (answer.status, error["code"]) == (status, status)
    assert error["message"].startswith(message)
    assert error["status"] == ("UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED")
    assert echo.received == []


# ---- IAP ----


def test_iap_redirects_to_google_login_naming_its_client_id(
    tokens: GoogleTokenServer, pool: urllib3.PoolManager, echo: Echo
) -> None:
    with IapFront(echo.url, tokens, IAP_CLIENT_ID, lambda: AIRFLOW_BASIC) as front:
        redirected = get(pool, front.url + "/")
        posted = pool.request("POST", front.url + "/api/v1/dags/d/dagRuns", body=b"{}")

    assert redirected.status == 302
    location = urlsplit(redirected.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "https://accounts.google.com/o/oauth2/v2/auth"
    )
    assert query["client_id"] == [IAP_CLIENT_ID]
    assert (query["response_type"], query["scope"]) == (["code"], ["openid email"])
    assert redirected.data == b"Invalid IAP credentials: empty token"
    assert (posted.status, posted.data) == (401, b"Invalid IAP credentials: empty token")
    assert echo.received == []


def test_iap_forwards_a_valid_id_token(
    tokens: GoogleTokenServer,
    request_: GoogleRequest,
    pool: urllib3.PoolManager,
    echo: Echo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(tokens.service_account_key()))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    token = id_token.fetch_id_token(request_, IAP_CLIENT_ID)

    with IapFront(
        echo.url, tokens, IAP_CLIENT_ID, lambda: AIRFLOW_BASIC, {DEFAULT_ACCOUNT.email}
    ) as front:
        answer = get(pool, front.url + "/api/v1/dags?limit=1", token)

    headers = answer.json()["headers"]
    assert answer.status == 200 and answer.json()["target"] == "/api/v1/dags?limit=1"
    assert headers["authorization"] == AIRFLOW_BASIC["Authorization"]
    assert (
        headers["x-goog-authenticated-user-email"] == f"accounts.google.com:{DEFAULT_ACCOUNT.email}"
    )
    assert front.requests_seen == [("GET", "/api/v1/dags", DEFAULT_ACCOUNT.email)]


def forged(tokens: GoogleTokenServer) -> str:
    """A genuine token's header and claims, signed by a key Google never had."""
    genuine = parse_jwt(tokens.issue_id_token(audience=IAP_CLIENT_ID))
    return sign_jwt(new_rsa_key(), genuine.header["kid"], genuine.payload)


@pytest.mark.parametrize(
    ("make_token", "status", "body"),
    [
        (
            lambda t: t.issue_id_token(audience="https://airflow.example.com"),
            401,
            "Invalid IAP credentials: JWT audience doesn't match this application ('aud' claim "
            f"(https://airflow.example.com) doesn't match expected value ({IAP_CLIENT_ID}))",
        ),
        (
            lambda t: t.issue_id_token(audience=IAP_CLIENT_ID, issued_at=time.time() - 7200),
            401,
            "Invalid IAP credentials: Expired JWT",
        ),
        (forged, 401, "Invalid IAP credentials: JWT signature is invalid"),
        (lambda t: t.issue_access_token(), 401, "Invalid IAP credentials: Unable to parse JWT"),
        (
            lambda t: t.issue_id_token(audience=IAP_CLIENT_ID, with_email=False),
            401,
            "Invalid IAP credentials: JWT 'email' claim isn't a string",
        ),
        (lambda t: t.issue_id_token(OTHER, IAP_CLIENT_ID), 403, "You don't have access."),
    ],
    ids=["wrong-audience", "expired", "forged", "access-token", "no-email", "not-allowed"],
)
def test_iap_refuses_like_google(
    tokens: GoogleTokenServer,
    pool: urllib3.PoolManager,
    echo: Echo,
    make_token: Any,
    status: int,
    body: str,
) -> None:
    with IapFront(
        echo.url, tokens, IAP_CLIENT_ID, lambda: AIRFLOW_BASIC, {DEFAULT_ACCOUNT.email}
    ) as front:
        answer = get(pool, front.url + "/api/v1/dags", make_token(tokens))

    assert answer.status == status
    assert answer.data.decode().startswith(body)
    assert answer.headers["X-Goog-IAP-Generated-Response"] == "true"
    assert echo.received == []


# ---- Composer environments API ----


def test_composer_environments_api(
    tokens: GoogleTokenServer, request_: GoogleRequest, pool: urllib3.PoolManager
) -> None:
    credentials = sa_credentials(tokens.service_account_key(), scopes=[CLOUD_PLATFORM])
    credentials.refresh(request_)
    composer1 = composer_environment(
        ENVIRONMENT, "https://tenant-tp.appspot.com", "composer-1.20.12-airflow-1.10.15"
    )
    environments = {ENVIRONMENT: composer1}
    with ComposerEnvironmentsApi(tokens, environments, {DEFAULT_ACCOUNT.email}) as api:
        found = get(pool, f"{api.url}/v1/{ENVIRONMENT}", credentials.token)
        missing = get(pool, f"{api.url}/v1/{ENVIRONMENT}-2", credentials.token)
        anonymous = get(pool, f"{api.url}/v1/{ENVIRONMENT}")
        stranger = get(pool, f"{api.url}/v1/{ENVIRONMENT}", tokens.issue_access_token(OTHER.email))

    assert found.status == 200
    resource = found.json()
    assert (resource["name"], resource["state"]) == (ENVIRONMENT, "RUNNING")
    assert resource["config"]["airflowUri"] == "https://tenant-tp.appspot.com"
    assert (
        resource["config"]["softwareConfig"]["imageVersion"] == "composer-1.20.12-airflow-1.10.15"
    )
    assert (missing.status, missing.json()["error"]["status"]) == (404, "NOT_FOUND")
    assert (anonymous.status, anonymous.json()["error"]["message"]) == (401, MISSING_CREDENTIALS)
    assert (stranger.status, stranger.json()["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert api.request_count == 4


# ---- the plumbing ----


def test_stop_ends_kept_alive_connections(pool: urllib3.PoolManager) -> None:
    with Echo() as server:
        assert pool.request("GET", server.url + "/").status == 200  # the pool keeps it open
        started = time.monotonic()
    assert time.monotonic() - started < 2
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url
