"""Redaction: every form in which an echoing server shows a credential is removed, the values
the auth paths hold are removed wherever they appear, and dagtrigger's own texts stay as written."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from dagtrigger import redact as redact_module
from dagtrigger.airflow.mwaa import PathTooLongError
from dagtrigger.auth import CachedTokenAuth, NoAuth, Token
from dagtrigger.auth.airflow_jwt import AirflowJwtAuth
from dagtrigger.auth.basic import BasicAuth
from dagtrigger.auth.bearer import StaticBearerAuth
from dagtrigger.auth.google_adc import GoogleAdcAuth
from dagtrigger.auth.mwaa_web import MwaaWebLoginAuth
from dagtrigger.doctor.config import AUTH_LABELS, explain_auth
from dagtrigger.doctor.model import fail
from dagtrigger.doctor.runner import Checklist
from dagtrigger.errors import (
    AuthenticationError,
    ConfigurationError,
    DagTriggerError,
    PermanentTriggerError,
    TransientTriggerError,
)
from dagtrigger.http import HttpSession, Response
from dagtrigger.redact import REDACTED, redact, remember_secret
from dagtrigger.settings import Settings
from dagtrigger.templates import MissingValueError, Placeholder, TemplateSyntaxError

SECRET = "s3cr3t-Value_42"
JWT = (
    "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZG1pbiIsImV4cCI6MTcwMDAwMDAwMH0"
    ".c2lnbmF0dXJlLW9mLXRoZS1pc3N1ZXI"
)
BASIC = base64.b64encode(f"admin:{SECRET}".encode()).decode()


@pytest.fixture(autouse=True)
def nothing_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values stay remembered for the life of the process: each test here starts without those
    of other tests (a token "fresh" would redact "issue a fresh token"), and leaves none."""
    monkeypatch.setattr(redact_module, "_known", set())
    monkeypatch.setattr(redact_module, "_known_longest_first", ())


def unique_secret() -> str:
    return "pw-" + secrets.token_urlsafe(16)


# --- what an echo shows ------------------------------------------------------------------------

ECHOES = {
    "raw Authorization line": f"POST /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {SECRET}\r\n",
    "raw Basic line, indented": f"headers:\n    authorization: Basic {BASIC}\n",
    "raw Proxy-Authorization line": f"Proxy-Authorization: Basic {BASIC}",
    "raw Cookie line": f"Cookie: theme=dark; sid={SECRET}",
    "raw Set-Cookie line": f"Set-Cookie: sid={SECRET}; Path=/; HttpOnly",
    "raw X-Api-Key line": f"x-api-key: {SECRET}",
    "raw security token line": f"X-Amz-Security-Token: {SECRET}",
    "raw lines inside a JSON string": json.dumps(
        {"request": f"GET / HTTP/1.1\r\nCookie: x={SECRET}\r\nAccept: */*"}
    ),
    "JSON header, upper case": json.dumps({"AUTHORIZATION": f"Token {SECRET}"}),
    "JSON header, mixed case": json.dumps({"headers": {"Set-Cookie": f"sid={SECRET}"}}),
    "Python repr of a dict": repr({"host": "a", "cookie": f"sid={SECRET}"}),
    "Python repr of pairs": repr([("Authorization", f"Digest {SECRET}"), ("Accept", "*/*")]),
    "Python repr of byte pairs": repr([(b"x-api-key", SECRET.encode())]),
    "HTML-escaped repr": escape(repr({"authorization": f"Custom {SECRET}"})),
    "HTML-escaped JSON": escape(json.dumps({"Cookie": f"sid={SECRET}"})),
    "Bearer in prose": f"the request carried Bearer {SECRET} and failed",
    "Basic in prose": f"credentials (Basic {BASIC}) rejected",
    "JSON password": json.dumps({"username": "admin", "password": SECRET}),
    "JSON passwd": json.dumps({"passwd": SECRET}),
    "JSON secret": json.dumps({"client_secret": SECRET}),
    "JSON access_token": json.dumps({"access_token": SECRET, "token_type": "bearer"}),
    "JSON id_token": json.dumps({"id_token": SECRET}),
    "JSON refresh_token": json.dumps({"refresh_token": SECRET}),
    "JSON token, number": '{"token": 4815162342}',
    "JSON assertion": json.dumps({"assertion": SECRET}),
    "JSON WebToken": json.dumps({"WebToken": SECRET, "WebServerHostname": "h"}),
    "JSON session": json.dumps({"session": SECRET}),
    "JSON csrf": json.dumps({"csrf_token": SECRET}),
    "JSON, upper-case name": json.dumps({"PASSWORD": SECRET}),
    "JSON inside a JSON string": json.dumps({"input": json.dumps({"password": SECRET})}),
    "JSON, cut short": '{"username": "admin", "password": "' + SECRET[:9],
    "repr field": repr({"password": SECRET}),
    "form field": f"grant_type=password&username=admin&password={SECRET}",
    "query parameter": f"GET /cb?code=1&access_token={SECRET}&state=x",
    "cookie field": f"_token={SECRET}; Path=/; SameSite=lax",
    "session cookie": f"session={SECRET}",
    "SigV4 credential": f"AWS4-HMAC-SHA256 Credential={SECRET}/20250101/eu-west-1/airflow/aws4_request",
    "JWT alone": f"token was {JWT}.",
    "JWT cut after its payload": f"token was {JWT.split('.')[0]}.eyJzdWIi",
    "URL user info": f"could not reach postgresql://airflow:{SECRET}@db:5432/airflow",
}
FASTAPI_422 = json.dumps(
    [
        {
            "type": "missing",
            "loc": ["body", "dag_run_id"],
            "msg": "Field required",
            "input": {"username": "admin", "password": SECRET},
        }
    ]
)


@pytest.mark.parametrize("text", ECHOES.values(), ids=ECHOES.keys())
def test_every_echo_form_loses_its_credential(text: str) -> None:
    redacted = redact(text)

    assert SECRET not in redacted and BASIC not in redacted and JWT[:16] not in redacted
    assert REDACTED in redacted


def test_what_surrounds_a_credential_stays() -> None:
    text = (
        "POST /auth/token HTTP/1.1\r\nHost: airflow:8080\r\nAuthorization: Bearer abc.def-123\r\n"
    )

    assert (
        redact(text)
        == "POST /auth/token HTTP/1.1\r\nHost: airflow:8080\r\nAuthorization: [redacted]\r\n"
    )
    assert redact(FASTAPI_422) == FASTAPI_422.replace(json.dumps(SECRET), REDACTED)


def test_json_strings_are_redacted_whole_with_their_escapes() -> None:
    password = 'it\'s "a, b" wörd\\'
    text = json.dumps({"password": password, "next": "kept"})

    assert redact(text) == '{"password": [redacted], "next": "kept"}'


def test_redacting_twice_changes_nothing() -> None:
    once = [redact(text) for text in ECHOES.values()]

    assert [redact(text) for text in once] == once


@pytest.mark.parametrize(
    "text",
    [
        "Bearer token",  # words, not a credential
        "This server requires Basic Authentication",
        'WWW-Authenticate: Bearer realm="airflow"',
        "a session cookie: check the web server",  # no header line: a sentence
        'store {"username": "...", "password": "..."} or {"token": "..."}',  # placeholders
        "AuthorizationError: refused",
        "http://127.0.0.1:8080/api/v2/dags/x@y",  # no user info
        "token_type=bearer&expires_in=3599",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_hostile_answers_are_redacted_in_linear_time() -> None:
    size = 200_000
    hostile = [
        '"' * size,
        '"password": "' * (size // 13),
        "a+" * (size // 2) + "://x",
        "\\n" * (size // 2),
        "bearer" + " " * size,
        "x_" * (size // 2) + "=",
        "&quot;" * (size // 6),
    ]
    started = time.perf_counter()
    for text in hostile:
        redact(text)

    assert time.perf_counter() - started < 10  # about 1 s; a quadratic pattern takes hours


# --- values the process holds ------------------------------------------------------------------


def test_a_remembered_value_is_removed_anywhere_and_in_the_forms_a_request_carries() -> None:
    value = unique_secret() + ' "/&ü'
    remember_secret(value)
    forms = {
        "as it is": f"see {value} here",
        "URL-encoded": f"see {quote_plus(value)} here",
        "percent-encoded": f"see {quote(value, safe='')} here",
        "in a JSON string": f"see {json.dumps(value)} here",
        "in a JSON string, UTF-8": f"see {json.dumps(value, ensure_ascii=False)} here",
    }

    assert {name: redact(text) for name, text in forms.items()} == {
        "as it is": f"see {REDACTED} here",
        "URL-encoded": f"see {REDACTED} here",
        "percent-encoded": f"see {REDACTED} here",
        "in a JSON string": f'see "{REDACTED}" here',
        "in a JSON string, UTF-8": f'see "{REDACTED}" here',
    }


def test_a_value_containing_another_is_removed_whole() -> None:
    short = unique_secret()
    remember_secret(short)
    remember_secret(short + "-longer")

    assert redact(f"x {short}-longer x") == f"x {REDACTED} x"


def test_a_remembered_word_does_not_hide_the_field_it_is_part_of() -> None:
    remember_secret("secret")  # a weak password, and part of a field's name

    assert redact('{"client_secret": "x-9f8e7d"}') == '{"client_[redacted]": [redacted]}'


def test_values_too_short_to_matter_are_not_remembered() -> None:
    remember_secret("abc")
    remember_secret("")
    remember_secret(None)

    assert redact("abc and abcd") == "abc and abcd"


def test_remembering_while_redacting_from_many_threads() -> None:
    values = [unique_secret() for _ in range(200)]
    text = " ".join(values)
    errors: list[BaseException] = []

    def remember(part: list[str]) -> None:
        for value in part:
            remember_secret(value)

    def keep_redacting() -> None:
        try:
            for _ in range(200):
                redact(text)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=remember, args=(values[i::4],)) for i in range(4)]
    threads += [threading.Thread(target=keep_redacting) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert redact(text) == " ".join([REDACTED] * len(values))


class ScriptedSession:
    """Stands in for HttpSession: answers every request with `answer`."""

    def __init__(self, answer: Response) -> None:
        self.answer = answer

    def request(self, method: str, url: str, **_: Any) -> Response:
        return self.answer


class _TokenFromIssuer(CachedTokenAuth):
    def __init__(self, value: str) -> None:
        super().__init__()
        self.value = value

    def fetch_token(self) -> Token:
        return Token(self.value, None)


def test_every_auth_path_remembers_the_credentials_it_holds() -> None:
    basic_password, static_token, jwt_password, fetched = (unique_secret() for _ in range(4))
    basic = BasicAuth("admin", basic_password)
    StaticBearerAuth(static_token)
    session: Any = ScriptedSession(Response(201, json.dumps({"access_token": JWT}).encode()))
    AirflowJwtAuth("https://airflow", "admin", jwt_password, session).headers()
    _TokenFromIssuer(fetched).headers()  # Google access and ID tokens, Airflow and MWAA JWTs

    header = basic.headers()["Authorization"].removeprefix("Basic ")
    for value in (basic_password, header, static_token, jwt_password, fetched):
        assert redact(f"echo: {value}.") == f"echo: {REDACTED}."


class _Mwaa:
    def __init__(self, web_token: str) -> None:
        self.web_token = web_token

    def create_web_login_token(self, Name: str) -> Mapping[str, str]:
        return {"WebToken": self.web_token, "WebServerHostname": "mwaa.example.com"}


@pytest.mark.parametrize("api_version, cookie", [("v1", "session"), ("v2", "_token")])
def test_mwaa_web_login_remembers_the_web_token_and_the_session(
    api_version: str, cookie: str
) -> None:
    web_token, session_value = unique_secret(), unique_secret()
    login = Response(302, b"", set_cookies=(f"{cookie}={session_value}; Path=/; Secure",))
    session: Any = ScriptedSession(login)
    auth = MwaaWebLoginAuth("prod", _Mwaa(web_token), session, api_version, "arn:role")

    auth.headers()

    assert redact(f"{web_token} {session_value}") == f"{REDACTED} {REDACTED}"


# --- the places messages are made ---------------------------------------------------------------


def _all_subclasses(cls: type[DagTriggerError]) -> list[type[DagTriggerError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


# The subclasses defined outside errors.py are imported above, so that this list holds them.
ERRORS = [DagTriggerError, *_all_subclasses(DagTriggerError)]


# Errors whose constructor builds the message from parts: the part given is the outside text.
BUILT_MESSAGES: dict[type[DagTriggerError], Callable[[str], DagTriggerError]] = {
    MissingValueError: lambda text: MissingValueError(Placeholder("data"), text),
}


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: error.__name__)
def test_every_error_redacts_its_message(error: type[DagTriggerError]) -> None:
    raised = BUILT_MESSAGES.get(error, error)(f"Airflow said: Authorization: Bearer {SECRET}")

    assert SECRET not in str(raised) and SECRET not in repr(raised)
    assert f"Airflow said: Authorization: Bearer {REDACTED}" in str(raised)


def test_the_errors_defined_elsewhere_are_checked_too() -> None:
    assert {PathTooLongError, TemplateSyntaxError, MissingValueError} <= set(ERRORS)


def test_errors_keep_their_data() -> None:
    transient = TransientTriggerError(f"password={SECRET}", status=503, retry_after=2.0)
    permanent = PermanentTriggerError(f"password={SECRET}", status=422)

    assert (transient.status, transient.retry_after, permanent.status) == (503, 2.0, 422)
    assert str(transient) == str(permanent) == f"password={REDACTED}"


def test_every_doctor_line_is_redacted_as_it_is_added() -> None:
    checks = Checklist()
    echo = f"GET /dags answered 500: GET /api/v2/dags HTTP/1.1\ncookie: sid={SECRET}"
    checks.add("authenticated", fail(echo, f"the echo again: Bearer {SECRET}"))

    def sdk_failure() -> Any:
        raise RuntimeError(f"an SDK said {{'Authorization': 'AWS4-HMAC-SHA256 {SECRET}'}}")

    checks.run("environment", sdk_failure)

    assert [(r.message, r.fix) for r in checks.results] == [
        (
            f"GET /dags answered 500: GET /api/v2/dags HTTP/1.1\ncookie: {REDACTED}",
            f"the echo again: Bearer {REDACTED}",
        ),
        (
            f"unexpected RuntimeError: an SDK said {{'Authorization': '{REDACTED}'}}",
            "the function would fail the same way; this is worth a bug report if unclear",
        ),
    ]


# --- dagtrigger's own texts --------------------------------------------------------------------

BASE_ENV = {"AIRFLOW_URL": "https://airflow.example.com", "DAG_ID": "load_sales"}


def _configuration_error(**env: str) -> str:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({**BASE_ENV, **env})
    return str(raised.value)


def _mwaa_login_without_cookie() -> str:
    session: Any = ScriptedSession(Response(200, b""))
    auth = MwaaWebLoginAuth("prod", _Mwaa(unique_secret()), session, "v1", "arn:role")
    with pytest.raises(AuthenticationError) as raised:
        auth.headers()
    return str(raised.value)


OWN_TEXTS: dict[str, Callable[[], str]] = {
    "no auth hint": lambda: NoAuth().hint(401),
    "basic hint": lambda: BasicAuth("admin", unique_secret()).hint(403),
    "bearer hint": lambda: StaticBearerAuth(unique_secret()).hint(401),
    "bearer description": lambda: StaticBearerAuth(unique_secret()).description,
    "jwt hint": lambda: AirflowJwtAuth("https://a", "admin", unique_secret(), HttpSession()).hint(
        403
    ),
    "google hint": lambda: GoogleAdcAuth(HttpSession()).hint(403),
    "auth labels": lambda: "; ".join(AUTH_LABELS.values()),
    "bearer explained": lambda: explain_auth(
        Settings.from_env({**BASE_ENV, "AIRFLOW_TOKEN": "t0ken-value"}), {}
    ),
    "password explained": lambda: explain_auth(
        Settings.from_env({**BASE_ENV, "AIRFLOW_USERNAME": "u", "AIRFLOW_PASSWORD": "pw-value"}),
        {},
    ),
    "bearer without a token": lambda: _configuration_error(AIRFLOW_AUTH="bearer"),
    "jwt without a password": lambda: _configuration_error(AIRFLOW_AUTH="jwt"),
    "a username alone": lambda: _configuration_error(AIRFLOW_USERNAME="admin"),
    "MWAA login without a cookie": _mwaa_login_without_cookie,
}


@pytest.mark.parametrize("make", OWN_TEXTS.values(), ids=OWN_TEXTS.keys())
def test_dagtriggers_own_texts_read_as_written(make: Callable[[], str]) -> None:
    text = make()

    assert REDACTED not in text  # an error's message was redacted when it was made
    assert redact(text) == text
