"""Credentials: the right header, a JWT fetched once and renewed in time, and no leaked password."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from dagtrigger.auth import NoAuth
from dagtrigger.auth.airflow_jwt import AirflowJwtAuth, jwt_expiry
from dagtrigger.auth.basic import BasicAuth
from dagtrigger.auth.bearer import StaticBearerAuth
from dagtrigger.errors import AuthenticationError, DagTriggerError, ErrorKind, TransientTriggerError
from dagtrigger.http import HttpSession, Response

PASSWORD = "hunter2-S3cret!"
BASE_URL = "https://airflow.example.com"


def jwt(subject: str, exp: float | None = None) -> str:
    """An unsigned JWT: only the issuer verifies it; dagtrigger reads `exp` alone."""

    def part(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims: dict[str, Any] = {"sub": subject}
    if exp is not None:
        claims["exp"] = exp
    return f"{part({'alg': 'HS512', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def token_response(token: str) -> Response:
    return Response(201, json.dumps({"access_token": token}).encode())


class TokenEndpoint:
    """Stands in for HttpSession: answers POST /auth/token with the scripted responses in order."""

    def __init__(self, *responses: Response, delay: float = 0.0) -> None:
        self._responses = list(responses)
        self._delay = delay
        self.calls: list[dict[str, Any]] = []

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Response:
        self.calls.append({"method": method, "url": url, "json_body": json_body})
        time.sleep(self._delay)
        return self._responses.pop(0) if len(self._responses) > 1 else self._responses[0]


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def jwt_auth(endpoint: TokenEndpoint, clock: Clock | None = None) -> AirflowJwtAuth:
    session: HttpSession = endpoint  # type: ignore[assignment]
    return AirflowJwtAuth(BASE_URL, "trigger-bot", PASSWORD, session, clock=clock)


def bearer_of(auth: AirflowJwtAuth) -> str:
    return auth.headers()["Authorization"].removeprefix("Bearer ")


def test_the_token_is_asked_for_with_the_username_and_password() -> None:
    endpoint = TokenEndpoint(token_response(jwt("a")))

    assert bearer_of(jwt_auth(endpoint)) == jwt("a")
    assert endpoint.calls == [
        {
            "method": "POST",
            "url": "https://airflow.example.com/auth/token",
            "json_body": {"username": "trigger-bot", "password": PASSWORD},
        }
    ]


def test_the_token_is_fetched_once_for_many_requests() -> None:
    endpoint = TokenEndpoint(token_response(jwt("a", exp=10_000)), token_response(jwt("b")))
    auth = jwt_auth(endpoint, Clock(0))

    tokens = {bearer_of(auth) for _ in range(20)}

    assert tokens == {jwt("a", exp=10_000)}
    assert len(endpoint.calls) == 1


def test_the_token_is_renewed_when_it_nears_its_expiry() -> None:
    first, second = jwt("a", exp=1000), jwt("b", exp=2000)
    endpoint = TokenEndpoint(token_response(first), token_response(second))
    clock = Clock(0)
    auth = jwt_auth(endpoint, clock)

    assert bearer_of(auth) == first
    clock.now = 1000 - auth.refresh_margin - 1  # just outside the margin: still good
    assert bearer_of(auth) == first
    clock.now = 1000 - auth.refresh_margin  # inside the margin: renew before it dies
    assert bearer_of(auth) == second
    assert bearer_of(auth) == second
    assert len(endpoint.calls) == 2


def test_a_token_without_exp_is_kept_until_refreshed() -> None:
    endpoint = TokenEndpoint(token_response("opaque-token"), token_response("opaque-2"))
    clock = Clock(0)
    auth = jwt_auth(endpoint, clock)

    bearer_of(auth)
    clock.now = 10 * 365 * 86400.0

    assert bearer_of(auth) == "opaque-token"
    assert len(endpoint.calls) == 1


@pytest.mark.parametrize(
    "exp",
    [
        pytest.param(10**400, id="400-digit-integer"),
        pytest.param(-1, id="negative"),
        pytest.param(0, id="zero"),
    ],
)
def test_a_token_with_an_unusable_exp_is_kept_until_refreshed(exp: int) -> None:
    endpoint = TokenEndpoint(token_response(jwt("a", exp=exp)), token_response(jwt("b")))
    auth = jwt_auth(endpoint, Clock(1_700_000_000))

    assert [bearer_of(auth), bearer_of(auth)] == [jwt("a", exp=exp)] * 2
    assert len(endpoint.calls) == 1


def jwt_with_claims_text(claims: str) -> str:
    """A JWT whose claims are `claims` as written: JSON with NaN, or nested past any parser."""
    encoded = base64.urlsafe_b64encode(claims.encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzUxMiJ9.{encoded}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param('{"exp": ' + "9" * 400 + "}", id="400-digit-integer"),
        pytest.param('{"exp": 1e400}', id="float-past-the-largest"),
        pytest.param('{"exp": NaN}', id="nan"),
        pytest.param('{"exp": Infinity}', id="infinity"),
        pytest.param('{"exp": -1700000000}', id="negative"),
        pytest.param('{"exp": 0}', id="zero"),
        pytest.param('{"exp": 253402300800}', id="after-the-year-9999"),
        pytest.param('{"exp": true}', id="boolean"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="nested-too-deeply"),
    ],
)
def test_an_exp_that_is_not_a_usable_time_means_no_expiry(claims: str) -> None:
    assert jwt_expiry(jwt_with_claims_text(claims)) is None


def test_refresh_forces_a_new_token() -> None:
    endpoint = TokenEndpoint(token_response(jwt("a", exp=10_000)), token_response(jwt("b")))
    auth = jwt_auth(endpoint, Clock(0))
    bearer_of(auth)

    assert auth.refresh() is True
    assert bearer_of(auth) == jwt("b")
    assert len(endpoint.calls) == 2


def test_concurrent_requests_share_one_token_fetch() -> None:
    endpoint = TokenEndpoint(token_response(jwt("a")), delay=0.05)
    auth = jwt_auth(endpoint)
    seen: list[str] = []

    threads = [threading.Thread(target=lambda: seen.append(bearer_of(auth))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen == [jwt("a")] * 8
    assert len(endpoint.calls) == 1


def test_a_failed_fetch_is_not_cached() -> None:
    endpoint = TokenEndpoint(Response(503, b"starting"), token_response(jwt("a")))
    auth = jwt_auth(endpoint)

    with pytest.raises(TransientTriggerError):
        auth.headers()

    assert bearer_of(auth) == jwt("a")


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_name_the_user(status: int) -> None:
    body = json.dumps({"detail": "Invalid credentials"}).encode()
    auth = jwt_auth(TokenEndpoint(Response(status, body)))

    with pytest.raises(AuthenticationError) as caught:
        auth.headers()

    message = str(caught.value)
    assert "'trigger-bot'" in message
    assert f"{status} Invalid credentials" in message
    assert "check AIRFLOW_USERNAME and AIRFLOW_PASSWORD" in message
    assert caught.value.status == status
    assert not caught.value.retryable
    assert caught.value.kind is ErrorKind.AUTHENTICATION
    assert caught.value.fix == "check AIRFLOW_USERNAME and AIRFLOW_PASSWORD."


def test_no_token_endpoint_means_not_airflow_3() -> None:
    auth = jwt_auth(TokenEndpoint(Response(404, b'{"detail": "Not Found"}')))

    with pytest.raises(AuthenticationError) as caught:
        auth.headers()

    message = str(caught.value)
    assert "https://airflow.example.com/auth/token does not exist (404)" in message
    assert "not Airflow 3" in message
    assert "AIRFLOW_AUTH=basic" in message


@pytest.mark.parametrize(
    ("response", "retry_after"),
    [
        (Response(500, b"Internal Server Error"), None),
        (Response(502, b"Bad Gateway"), None),
        (Response(503, b"", {"Retry-After": "4"}), 4.0),
        (Response(429, b"", {"Retry-After": "2"}), 2.0),
    ],
    ids=["500", "502", "503", "429"],
)
def test_a_token_server_in_trouble_is_transient(
    response: Response, retry_after: float | None
) -> None:
    auth = jwt_auth(TokenEndpoint(response))

    with pytest.raises(TransientTriggerError) as caught:
        auth.headers()

    assert caught.value.retryable
    assert caught.value.status == response.status
    assert caught.value.retry_after == retry_after
    throttled = response.status == 429
    assert caught.value.kind is (ErrorKind.THROTTLED if throttled else ErrorKind.SERVER_ERROR)


@pytest.mark.parametrize(
    "response",
    [Response(200, b'{"token_type": "bearer"}'), Response(200, b"<html>login</html>")],
    ids=["no-access-token", "not-json"],
)
def test_an_answer_without_a_token_is_an_authentication_error(response: Response) -> None:
    with pytest.raises(AuthenticationError, match="/auth/token"):
        jwt_auth(TokenEndpoint(response)).headers()


@pytest.mark.parametrize(
    "response",
    [
        Response(401, b'{"detail": "Invalid credentials"}'),
        Response(403, b"Forbidden"),
        Response(404, b""),
        Response(400, b'{"detail": "bad request"}'),
        Response(500, b"oops"),
        Response(200, b"{}"),
    ],
    ids=["401", "403", "404", "400", "500", "200-empty"],
)
def test_the_password_never_appears_in_an_error(response: Response) -> None:
    auth = jwt_auth(TokenEndpoint(response))

    with pytest.raises(DagTriggerError) as caught:
        auth.headers()

    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in auth.description
    assert PASSWORD not in auth.hint(403)


def test_basic_auth_header_is_the_rfc_7617_encoding() -> None:
    assert BasicAuth("Aladdin", "open sesame").headers() == {
        "Authorization": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    }


def test_basic_auth_encodes_non_ascii_as_utf8() -> None:
    # RFC 7617 section 2.1's example for charset="UTF-8".
    assert BasicAuth("test", "123\u00a3").headers() == {"Authorization": "Basic dGVzdDoxMjPCow=="}


def test_basic_auth_cannot_be_refreshed_and_hints_at_the_user_not_the_password() -> None:
    auth = BasicAuth("trigger-bot", PASSWORD)

    assert auth.refresh() is False  # a retry with the same password would be refused again
    for text in (auth.description, auth.hint(401), auth.hint(403)):
        assert "'trigger-bot'" in text
        assert PASSWORD not in text
    assert "auth_backends" in auth.hint(403)


def test_static_bearer_sends_the_token_and_cannot_refresh() -> None:
    auth = StaticBearerAuth("tok-123")

    assert auth.headers() == {"Authorization": "Bearer tok-123"}
    assert auth.refresh() is False
    assert "tok-123" not in auth.description + auth.hint(401)
    assert "AIRFLOW_TOKEN" in auth.hint(401)


def test_no_auth_sends_nothing_and_says_how_to_authenticate() -> None:
    auth = NoAuth()

    assert auth.headers() == {}
    assert auth.refresh() is False
    assert "AIRFLOW_USERNAME and AIRFLOW_PASSWORD" in auth.hint(401)
