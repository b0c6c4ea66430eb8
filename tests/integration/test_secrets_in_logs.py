"""No token, password, cookie or key material in anything dagtrigger logs or raises, on any auth path.

Each case runs events through one auth path, against real Airflow 2 and 3 and the stand-ins of
Google and MWAA, in success and in failure (wrong password, expired or forged token, access
denied, unreachable), with known secrets. On every auth path a server also echoes the request
back, headers and body, as a 500 page or as FastAPI's 422 (tests.standins.echo), to the function
and to `dagtrigger doctor`. Everything is captured:

- Python logging at DEBUG for every logger (dagtrigger's, urllib3's, botocore's, google-auth's),
  except the loggers of the stand-ins and moto, which play the cloud, not the function;
- powertools' JSON lines (its stream is swapped for a buffer) on the Lambda paths;
- stdout and stderr of functions-framework serving functions/main.py on the Google and password
  paths;
- every exception with its whole chain (`traceback.format_exception`), and str() and repr() of
  every report and Lambda answer (for an asynchronous invocation, what reaches the on-failure
  destination);
- what `dagtrigger doctor` prints.

None may hold a secret, its base64 (standard and URL-safe), or, for tokens, its first 16
characters (a JWT's first 16 are its header: any JWT of that issuer is caught). The tokens issued
are learnt from the stand-ins: their records (Google access tokens issued, assertions sent for
them, ID tokens presented to IAP), spies on their public methods (MWAA web tokens, sessions and
JWTs), the Airflow 3 JWT fetched with the same credentials (its header is what every token of
that Airflow starts with), and every credential an echoing server was sent.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets as secrets_module
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest

from dagtrigger import runtime
from dagtrigger.cli import main as dagtrigger_cli
from dagtrigger.redact import REDACTED
from dagtrigger.runtime import build_dispatcher
from dagtrigger.settings import Settings
from tests.integration.functions_server import FunctionsServer
from tests.integration.helpers import read_run
from tests.standins.aws_lambda import LambdaContext
from tests.standins.echo import Echoes, EchoFront, EchoRule
from tests.standins.google import composer_environment
from tests.standins.google_composer import (
    COMPOSER1_ENVIRONMENT,
    COMPOSER_IMAGES,
    IAP_CLIENT_ID,
    Google,
)
from tests.standins.google_jwt import new_rsa_key, private_key_pem
from tests.standins.mwaa import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    MwaaEnvironment,
    MwaaStandin,
)
from tools.local_airflow import REPO, LocalAirflow, free_port

pytestmark = pytest.mark.airflow

DAG = "dagtrigger_example"
MWAA_VERSIONS = {"2": "2.10.3", "3": "3.0.6"}
MWAA_ENV = "dagtrigger-secrets"
# Lines that prove the capture heard the libraries at DEBUG.
URLLIB3_DEBUG = "Starting new HTTP connection"
DAGTRIGGER_HTTP_DEBUG = " bytes)"  # dagtrigger.http: "POST <url> answered 201 (412 bytes)"
BOTOCORE_BODY = "Response body: (withheld by dagtrigger)"
GOOGLE_AUTH_REQUEST = "Making request..."
# The stand-ins and moto play the cloud: what they log is the cloud's, not the function's.
CLOUD_LOGGERS = ("tests.", "moto", "werkzeug", "responses")


# --- secrets and where they must not appear ------------------------------------------------------


@dataclass
class Secrets:
    """Known secrets, each with the forms in which a leak would show."""

    forms: dict[str, str] = field(default_factory=dict)  # value -> what it is

    def add(self, what: str, value: str, *, token: bool = False) -> None:
        assert len(value) >= 8, f"{what} is too short to look for"
        raw = value.encode()
        self.forms[value] = what
        self.forms[base64.b64encode(raw).decode()] = f"{what} (base64)"
        self.forms[base64.urlsafe_b64encode(raw).decode().rstrip("=")] = f"{what} (base64url)"
        if token and len(value) > 16:
            self.forms[value[:16]] = f"{what} (first 16 characters)"

    def add_basic(self, username: str, password: str) -> None:
        self.add("the password", password)
        self.forms[base64.b64encode(f"{username}:{password}".encode()).decode()] = (
            "the basic auth header value"
        )

    def add_private_key(self, pem: str) -> None:
        self.forms[pem.strip()] = "the private key"
        for line in pem.splitlines():
            if line and not line.startswith("-----"):
                self.forms[line] = "a line of the private key"

    def leaks(self, text: str) -> list[str]:
        return sorted({what for value, what in self.forms.items() if value in text})


class _Collector(logging.Handler):
    def __init__(self, texts: list[tuple[str, str]]) -> None:
        super().__init__(logging.DEBUG)
        self.texts = texts
        self.paused = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.paused or record.name.startswith(CLOUD_LOGGERS):
            return
        parts = [record.getMessage(), repr(record.args)]
        parts += [f"{k}={v!r}" for k, v in vars(record).items() if k not in _PLAIN_RECORD]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
        self.texts.append((f"logger {record.name}", "\n".join(parts)))


_PLAIN_RECORD = set(vars(logging.LogRecord("n", 0, "p", 0, "m", None, None)))


@dataclass
class Capture:
    """Everything the function logged, printed or raised during one test, with where it was."""

    texts: list[tuple[str, str]]
    collector: _Collector
    powertools: io.StringIO

    def add(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def add_exception(self, exc: BaseException) -> None:
        self.texts.append(("an exception", "".join(traceback.format_exception(exc))))

    def add_file(self, where: str, path: Path) -> None:
        self.texts.append((where, path.read_text(encoding="utf-8", errors="backslashreplace")))

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The test's own setup (e.g. storing the secret) is not the function's doing."""
        self.collector.paused = True
        try:
            yield
        finally:
            self.collector.paused = False

    def leaks(self, secrets: Secrets) -> list[tuple[str, str]]:
        """(what leaked, where), for every secret found anywhere."""
        sources = [*self.texts, ("powertools", self.powertools.getvalue())]
        return sorted({(what, where) for where, text in sources for what in secrets.leaks(text)})

    def assert_clean(self, secrets: Secrets, *, saw: tuple[str, ...] = ()) -> None:
        """No secret anywhere; `saw`: lines that prove the capture heard the libraries at DEBUG."""
        text = "\n".join(t for _, t in self.texts) + self.powertools.getvalue()
        assert text.strip(), "nothing captured: it proves nothing"
        for marker in saw:
            assert marker in text, f"the capture missed {marker!r}"
        assert self.leaks(secrets) == []


@pytest.fixture
def capture() -> Iterator[Capture]:
    texts: list[tuple[str, str]] = []
    collector = _Collector(texts)
    root = logging.getLogger()
    loggers = [root] + [
        logging.getLogger(name)
        for name in (
            *logging.root.manager.loggerDict,
            "dagtrigger",
            "urllib3",
            "botocore",
            "boto3",
            "google",
            "google.auth",
            "aws_lambda_powertools",
        )
    ]
    saved = [(logger, logger.level, logger.propagate, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if logger is not root and not logger.propagate:
            logger.addHandler(collector)
    root.addHandler(collector)
    powertools = io.StringIO()
    from dagtrigger.platforms import aws_lambda

    handler = aws_lambda.logger.logger_handler
    previous = handler.setStream(powertools)  # type: ignore[attr-defined]
    try:
        yield Capture(texts, collector, powertools)
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
        root.removeHandler(collector)
        for logger, level, propagate, disabled in saved:
            logger.removeHandler(collector)
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = disabled


def run_in_process(capture: Capture, env: dict[str, str], event: dict[str, Any]) -> Any:
    """Dispatcher.handle with these settings; the report (or the exception) is captured."""
    try:
        report = build_dispatcher(Settings.from_env(env)).handle(event)
    except Exception as exc:  # a ConfigurationError, raised on purpose
        capture.add_exception(exc)
        return exc
    capture.add("the report", f"{report}\n{report!r}")
    for outcome in report.outcomes:
        if outcome.error is not None:
            capture.add_exception(outcome.error)
    return report


def run_lambda(capture: Capture, event: dict[str, Any]) -> Any:
    """The Lambda handler, as Lambda calls it; the answer or the exception is captured."""
    import lambda_function

    try:
        answer = lambda_function.handler(event, LambdaContext())
    except Exception as exc:
        capture.add_exception(exc)
        return exc
    capture.add("the Lambda answer", repr(answer))
    return answer


_counter = iter(range(1, 10**6))


def gcs_event(tag: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A fresh GCS object event (attributes, data), so that each case creates its own run."""
    generation = str(7_000_000 + next(_counter))
    name = f"secrets/{tag}.csv"
    attributes = {
        "specversion": "1.0",
        "type": "google.cloud.storage.object.v1.finalized",
        "source": "//storage.googleapis.com/projects/_/buckets/acme-landing",
        "id": f"secrets-{tag}-{generation}",
        "time": "2024-06-01T06:15:02.437Z",
    }
    return attributes, {"bucket": "acme-landing", "name": name, "generation": generation}


def structured(tag: str) -> dict[str, Any]:
    attributes, data = gcs_event(tag)
    return {**attributes, "data": data}


def bridge_event(tag: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"secrets-{tag}-{next(_counter)}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2024-06-01T06:00:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/nightly"],
        "detail": {},
    }


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def forged_jwt() -> str:
    """A JWT Airflow never issued: right shape, wrong key, expired."""
    header = base64.urlsafe_b64encode(b'{"alg":"HS512","typ":"JWT"}').rstrip(b"=").decode()
    claims = {"sub": "admin", "aud": "apache-airflow", "exp": 1, "iat": 0, "nbf": 0}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(b'x' * 64).rstrip(b'=').decode()}"


def airflow_jwt_prefix(airflow: LocalAirflow, secrets: Secrets) -> None:
    """Airflow 3: every JWT it issues starts with the same header; learn it by asking for one."""
    if airflow.major == "3":
        secrets.add("a JWT issued by Airflow 3", airflow.token(), token=True)


# --- Airflow 2 basic, Airflow 3 JWT, static bearer ----------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in (
        "AIRFLOW_URL", "AIRFLOW_AUTH", "AIRFLOW_USERNAME", "AIRFLOW_PASSWORD", "AIRFLOW_TOKEN",
        "AIRFLOW_API_VERSION", "DAG_ID", "DAGTRIGGER_ROUTES", "MWAA_ENVIRONMENT",
        "AIRFLOW_SECRET_ARN", "COMPOSER_ENVIRONMENT", "AWS_PROFILE", "AWS_SESSION_TOKEN",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(REPO / "functions"))
    runtime.reset()
    yield monkeypatch
    runtime.reset()


def password_env(airflow: LocalAirflow, password: str, url: str | None = None) -> dict[str, str]:
    return {
        "AIRFLOW_URL": url or airflow.url,
        "AIRFLOW_USERNAME": "admin",
        "AIRFLOW_PASSWORD": password,
        "DAG_ID": DAG,
        "DAGTRIGGER_DEADLINE": "2",
        "AIRFLOW_API_VERSION": "v2" if airflow.major == "3" else "v1",
    }


@pytest.mark.parametrize("case", ["success", "wrong-password", "unreachable"])
def test_password_paths_basic_on_airflow2_jwt_on_airflow3(
    airflow: LocalAirflow, capture: Capture, clean_env: pytest.MonkeyPatch, case: str
) -> None:
    secrets = Secrets()
    password = {"success": airflow.admin_password, "unreachable": airflow.admin_password}.get(
        case, "wrong-" + airflow.admin_password
    )
    secrets.add_basic("admin", password)
    airflow_jwt_prefix(airflow, secrets)
    env = password_env(airflow, password, closed_url() if case == "unreachable" else None)

    dispatcher = build_dispatcher(Settings.from_env(env))
    report = dispatcher.handle(structured(f"password-{case}"))
    capture.add("the report", f"{report}\n{report!r}")
    for outcome in report.outcomes:
        if outcome.error is not None:
            capture.add_exception(outcome.error)

    (outcome,) = report.outcomes
    if case == "success":
        assert outcome.outcome == "created"
        if airflow.major == "3":  # the very JWT dagtrigger holds
            issued = dispatcher._client().transport.auth.headers()["Authorization"]
            secrets.add("the JWT dagtrigger got", issued.removeprefix("Bearer "), token=True)
    else:
        assert outcome.outcome == "failed"
    capture.assert_clean(secrets, saw=(DAGTRIGGER_HTTP_DEBUG,) if case != "unreachable" else ())


@pytest.mark.parametrize("case", ["success", "forged"])
def test_static_bearer_token(
    airflow: LocalAirflow, capture: Capture, clean_env: pytest.MonkeyPatch, case: str
) -> None:
    if case == "success" and airflow.major == "2":
        pytest.skip("Airflow 2's basic-auth API takes no bearer token; the forged case covers it")
    secrets = Secrets()
    token = airflow.token() if case == "success" else forged_jwt()
    secrets.add("AIRFLOW_TOKEN", token, token=True)
    env = {"AIRFLOW_URL": airflow.url, "AIRFLOW_TOKEN": token, "DAG_ID": DAG}
    env |= {"DAGTRIGGER_DEADLINE": "2"}

    report = run_in_process(capture, env, structured(f"bearer-{case}"))

    (outcome,) = report.outcomes
    assert outcome.outcome == ("created" if case == "success" else "failed")
    capture.assert_clean(secrets)


@pytest.mark.parametrize("case", ["success", "wrong-password"])
def test_password_paths_under_functions_framework(
    airflow: LocalAirflow, capture: Capture, tmp_path: Path, case: str
) -> None:
    secrets = Secrets()
    password = airflow.admin_password if case == "success" else "wrong-" + airflow.admin_password
    secrets.add_basic("admin", password)
    airflow_jwt_prefix(airflow, secrets)
    env = password_env(airflow, password)
    env.pop("AIRFLOW_API_VERSION")  # detected: one more request, one more place to leak

    with FunctionsServer("handle_cloud_event", env, tmp_path / "function.log") as function:
        attributes, data = gcs_event(f"ff-password-{case}")
        assert function.post_binary(attributes, data) == 200
        outcomes = [e.get("outcome") for e in function.log_entries() if "outcome" in e]
    capture.add_file("functions-framework", tmp_path / "function.log")

    assert outcomes == (["created"] if case == "success" else ["failed"])
    capture.assert_clean(secrets)


# --- Google: ADC access tokens (Composer 2/3) and IAP ID tokens (Composer 1) --------------------


def google_secrets(google: Google) -> Secrets:
    """The key, and every token the stand-ins issued or were shown, up to now."""
    secrets = Secrets()
    secrets.add_private_key(google.key["private_key"])
    secrets.add("the private key id", google.key["private_key_id"])
    for token in list(google.tokens._access_tokens):  # its issued-token records
        secrets.add("a Google access token", token, token=True)
    for token in google.tokens.id_tokens_presented:
        secrets.add("an IAP ID token", token, token=True)
    for assertion in google.tokens.assertions_received:  # signed by the key: it buys tokens
        secrets.add("a signed JWT assertion", assertion)
    return secrets


@pytest.mark.parametrize(
    "case", ["success-then-expired-token", "access-denied", "iap-success", "iap-wrong-audience"]
)
def test_google_paths_under_functions_framework(
    airflow: LocalAirflow, google: Google, capture: Capture, tmp_path: Path, case: str
) -> None:
    env = google.env()
    if case == "access-denied":
        google.composer.allowed = {"someone-else@acme-data.iam.gserviceaccount.com"}
    if case == "iap-success":
        env = google.env(COMPOSER_ENVIRONMENT=COMPOSER1_ENVIRONMENT)
    if case == "iap-wrong-audience":
        env = google.env(
            COMPOSER_ENVIRONMENT="",
            AIRFLOW_URL=google.iap.url,
            IAP_CLIENT_ID="999-wrong.apps.googleusercontent.com",
        )
    with FunctionsServer("handle_cloud_event", env, tmp_path / "function.log") as function:
        statuses = [function.post_binary(*gcs_event(f"google-{case}"))]
        if case == "success-then-expired-token":
            google.tokens.expire_access_tokens()  # the front now refuses it: a renewal follows
            statuses.append(function.post_binary(*gcs_event(f"google-{case}-renewed")))
        outcomes = [e["outcome"] for e in function.log_entries() if "outcome" in e]
    capture.add_file("functions-framework", tmp_path / "function.log")

    assert set(statuses) == {200}
    expected = {
        "success-then-expired-token": ["created", "created"],
        "access-denied": ["failed"],
        "iap-success": ["created"],
        "iap-wrong-audience": ["failed"],
    }[case]
    assert outcomes == expected
    if case == "success-then-expired-token":
        assert len(google.tokens._access_tokens) >= 2, "the expired token was renewed"
    if case.startswith("iap"):
        assert google.tokens.id_tokens_presented, "IAP saw an ID token"
    capture.assert_clean(google_secrets(google))


@pytest.mark.parametrize("case", ["success", "untrusted-key", "token-endpoint-unreachable"])
def test_google_adc_in_process_at_debug(
    airflow: LocalAirflow,
    google: Google,
    capture: Capture,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    case: str,
) -> None:
    key = google.key
    if case == "untrusted-key":  # a key Google never issued: the token endpoint refuses it
        forged = private_key_pem(new_rsa_key())
        key = {**key, "private_key": forged, "private_key_id": secrets_module.token_hex(20)}
    if case == "token-endpoint-unreachable":
        key = {**key, "token_uri": closed_url() + "/token"}
    key_file = tmp_path / "case-key.json"
    key_file.write_text(json.dumps(key))
    env = google.env(GOOGLE_APPLICATION_CREDENTIALS=str(key_file))
    for name, value in env.items():
        clean_env.setenv(name, value)

    report = run_in_process(capture, env, structured(f"adc-{case}"))

    secrets = google_secrets(google)
    secrets.add_private_key(key["private_key"])
    if case == "success":
        (outcome,) = report.outcomes
        assert outcome.outcome == "created"
    else:
        assert not report.outcomes or report.outcomes[0].outcome == "failed"
    capture.assert_clean(secrets, saw=(GOOGLE_AUTH_REQUEST,))


@pytest.mark.parametrize("case", ["key-file", "metadata-server", "access-denied"])
def test_google_iap_in_process_at_debug(
    airflow: LocalAirflow,
    google: Google,
    capture: Capture,
    clean_env: pytest.MonkeyPatch,
    case: str,
) -> None:
    env = google.env(
        COMPOSER_ENVIRONMENT="", AIRFLOW_URL=google.iap.url, IAP_CLIENT_ID=IAP_CLIENT_ID
    )
    if case == "metadata-server":
        env.pop("GOOGLE_APPLICATION_CREDENTIALS")
        clean_env.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        google.tokens.patch_google_auth_metadata(clean_env)
        google.iap.allowed = {google.tokens.metadata_identity.email}
    if case == "access-denied":
        google.iap.allowed = {"someone-else@acme-data.iam.gserviceaccount.com"}
    for name, value in env.items():
        clean_env.setenv(name, value)

    report = run_in_process(capture, env, structured(f"iap-{case}"))

    (outcome,) = report.outcomes
    assert outcome.outcome == ("failed" if case == "access-denied" else "created")
    assert google.tokens.id_tokens_presented, "IAP saw an ID token"
    capture.assert_clean(google_secrets(google), saw=(GOOGLE_AUTH_REQUEST, URLLIB3_DEBUG))


# --- MWAA: invoke_rest_api (IAM) and web login -----------------------------------------------------


@dataclass
class Mwaa:
    standin: MwaaStandin
    echoes: Echoes  # no rules unless a test adds some
    web_tokens: list[str]
    sessions: list[str]
    jwts: list[str]

    def secrets(self, *secret_keys: str) -> Secrets:
        secrets = Secrets()
        for key in (DEFAULT_SECRET_KEY, *secret_keys):
            secrets.add("an AWS secret access key", key)
        for token in self.web_tokens:
            secrets.add("an MWAA web login token", token, token=True)
        for session in self.sessions:
            secrets.add("an MWAA web session cookie", session, token=True)
        for jwt in self.jwts:
            secrets.add("an MWAA _token JWT", jwt, token=True)
        return secrets


@pytest.fixture
def mwaa(airflow: LocalAirflow, clean_env: pytest.MonkeyPatch) -> Iterator[Mwaa]:
    environment = MwaaEnvironment(
        MWAA_ENV, airflow.url, MWAA_VERSIONS[airflow.major], airflow.admin_headers
    )
    echoes = Echoes()
    with MwaaStandin({MWAA_ENV: environment}, echoes=echoes) as standin:
        recorded = Mwaa(standin, echoes, [], [], [])
        sessions = standin.sessions
        for method, into in (
            ("issue_token", recorded.web_tokens),
            ("open_session", recorded.sessions),
            ("issue_jwt", recorded.jwts),
        ):
            original = getattr(sessions, method)

            def spy(*args: Any, _original: Any = original, _into: list[str] = into) -> str:
                value = _original(*args)
                _into.append(value)
                return str(value)

            clean_env.setattr(sessions, method, spy)
        for name, value in standin.client_env().items():
            clean_env.setenv(name, value)
        clean_env.setenv("MWAA_ENVIRONMENT", MWAA_ENV)
        clean_env.setenv("DAG_ID", DAG)
        clean_env.setenv("DAGTRIGGER_DEADLINE", "2")
        yield recorded


@pytest.mark.parametrize(
    "case",
    [
        "invoke-success",
        "invoke-access-denied",
        "invoke-wrong-secret-key",
        "invoke-unreachable",
        "web-success-then-expired-session",
        "web-access-denied",
    ],
)
def test_mwaa_paths_through_the_lambda_handler(
    airflow: LocalAirflow, mwaa: Mwaa, capture: Capture, clean_env: pytest.MonkeyPatch, case: str
) -> None:
    wrong_key = "wrong-" + DEFAULT_SECRET_KEY
    if case.startswith("web"):
        clean_env.setenv("AIRFLOW_AUTH", "mwaa-web")
    if case.endswith("access-denied"):
        mwaa.standin.allowed = {"AKIDSOMEONEELSE"}
    if case == "invoke-wrong-secret-key":
        clean_env.setenv("AWS_SECRET_ACCESS_KEY", wrong_key)
    if case == "invoke-unreachable":
        clean_env.setenv("AWS_ENDPOINT_URL_MWAA", closed_url())

    answers = [run_lambda(capture, bridge_event(case))]
    if case == "web-success-then-expired-session":
        mwaa.standin.expire_sessions()
        answers.append(run_lambda(capture, bridge_event(case + "-renewed")))

    if case.endswith("success") or case == "web-success-then-expired-session":
        assert all(isinstance(a, dict) and a["runs"][0]["outcome"] == "created" for a in answers)
        run = answers[0]["runs"][0]
        assert read_run(airflow, run["dag_id"], run["dag_run_id"]) is not None
    else:
        assert all(isinstance(a, Exception) for a in answers), answers
    if case == "web-success-then-expired-session":
        assert mwaa.standin.logins == 2 and len(mwaa.web_tokens) == 2
    saw = () if case == "invoke-unreachable" else (BOTOCORE_BODY,)
    capture.assert_clean(mwaa.secrets(wrong_key), saw=saw)


# --- Secrets Manager: self-hosted Airflow from Lambda ------------------------------------------------


MOTO_SECRET_KEY = "moto-secret-access-key-for-tests"


@contextmanager
def secrets_manager(
    capture: Capture, clean_env: pytest.MonkeyPatch, name: str, credentials: dict[str, str]
) -> Iterator[str]:
    """Secrets Manager (moto on loopback) holding `credentials`, with the function's AWS
    settings pointing at it; yields the secret's ARN."""
    import boto3
    from aws_lambda_powertools.utilities import parameters
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        for variable, value in {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "AKIDMOTO",
            "AWS_SECRET_ACCESS_KEY": MOTO_SECRET_KEY,
            "AWS_DEFAULT_REGION": "eu-west-1",
        }.items():
            clean_env.setenv(variable, value)
        with capture.paused():
            secret = boto3.client("secretsmanager").create_secret(
                Name=f"{name}-{port}", SecretString=json.dumps(credentials)
            )
        parameters.clear_caches()
        yield str(secret["ARN"])
    finally:
        server.stop()
        parameters.clear_caches()


@pytest.mark.parametrize("case", ["success", "wrong-password", "no-such-secret"])
def test_secrets_manager_credentials_through_the_lambda_handler(
    airflow: LocalAirflow, capture: Capture, clean_env: pytest.MonkeyPatch, case: str
) -> None:
    secrets = Secrets()
    password = airflow.admin_password if case == "success" else "wrong-" + airflow.admin_password
    secrets.add_basic("admin", password)
    secrets.add("the moto secret access key", MOTO_SECRET_KEY)
    airflow_jwt_prefix(airflow, secrets)
    for name, value in {
        "AIRFLOW_URL": airflow.url,
        "DAG_ID": DAG,
        "DAGTRIGGER_DEADLINE": "2",
    }.items():
        clean_env.setenv(name, value)
    credentials = {"username": "admin", "password": password}
    name = f"dagtrigger/secrets-{case}-{airflow.major}"
    with secrets_manager(capture, clean_env, name, credentials) as arn:
        clean_env.setenv("AIRFLOW_SECRET_ARN", arn if case != "no-such-secret" else arn + "-gone")
        answer = run_lambda(capture, bridge_event(f"secretsmanager-{case}"))

    if case == "success":
        assert isinstance(answer, dict) and answer["runs"][0]["outcome"] == "created"
    else:
        assert isinstance(answer, Exception)
    capture.assert_clean(secrets, saw=(BOTOCORE_BODY,))


# --- Servers that echo the request, on every auth path ----------------------------------------------
#
# A front, Airflow, Google's or MWAA's front answers with the request it got (tests.standins.echo):
# the trigger (POST .../dagRuns) for the function, `GET /dags` for doctor's `authenticated`
# check, or `POST /auth/token`. Each case runs the entry point of its platform and `dagtrigger
# doctor`, proves the echo reached their output (it shows [redacted]), and finds no secret: the
# credentials of the path, and every credential the echo showed.

TRIGGER, DAGS, TOKEN = r"/dagRuns$", r"/dags$", r"/auth/token$"


def echoing(style: str, *paths: str) -> Echoes:
    return Echoes(*(EchoRule(path, style) for path in paths))


def add_echoed(secrets: Secrets, echoes: Echoes) -> None:
    """Every credential the echoes showed: what is looked for is exactly what was echoed."""
    assert echoes.echoed, "nothing was echoed: the case proves nothing"
    for request in echoes.echoed:
        scheme, _, credential = (request.header("Authorization") or "").partition(" ")
        if scheme in ("Bearer", "Basic"):
            secrets.add(f"an echoed {scheme} credential", credential, token=scheme == "Bearer")
        for morsel in SimpleCookie(request.header("Cookie") or "").values():
            secrets.add(f"an echoed {morsel.key} cookie", morsel.value, token=True)
        body = json.loads(request.body) if request.path.endswith("/auth/token") else {}
        if "password" in body:
            secrets.add("an echoed password", body["password"])


def assert_nothing_echoed_leaks(
    capture: Capture,
    secrets: Secrets,
    echoes: Echoes,
    answers: list[str],
    doctor: str,
    saw: tuple[str, ...] = (),
) -> None:
    """No secret, nor any credential the echoes showed, in what was captured; and what the
    function and doctor said about the echoed answer shows it redacted."""
    add_echoed(secrets, echoes)
    capture.assert_clean(secrets, saw=saw)
    assert answers and all(REDACTED in answer for answer in answers), answers
    assert REDACTED in doctor


def run_doctor(capture: Capture, capsys: pytest.CaptureFixture[str]) -> str:
    """`dagtrigger doctor --write-check` in-process, with the environment the test set."""
    runtime.reset()
    capsys.readouterr()
    with suppress(SystemExit):
        dagtrigger_cli(["doctor", "--write-check"])
    out, err = capsys.readouterr()
    capture.add("doctor's output", out + err)
    return out


def setenv(clean_env: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)


@pytest.mark.parametrize("style", ["trigger-500-text", "trigger-500-html", "token-422-json"])
def test_echoed_password_paths_basic_on_airflow2_jwt_on_airflow3(
    airflow: LocalAirflow,
    capture: Capture,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    style: str,
) -> None:
    if style.startswith("token") and airflow.major == "2":
        pytest.skip("Airflow 2 issues no token: basic auth sends no password in a body")
    where, _, kind = style.partition("-")
    echoes = echoing(kind, TOKEN) if where == "token" else echoing(kind, TRIGGER, DAGS)
    secrets = Secrets()
    secrets.add_basic("admin", airflow.admin_password)
    airflow_jwt_prefix(airflow, secrets)
    with EchoFront(airflow.url, echoes) as front:
        env = password_env(airflow, airflow.admin_password, front.url)
        setenv(clean_env, env)
        answer = run_lambda(capture, bridge_event(f"echo-password-{style}"))
        doctor = run_doctor(capture, capsys)
        with FunctionsServer("handle_cloud_event", env, tmp_path / "function.log") as function:
            status = function.post_binary(*gcs_event(f"echo-password-{style}"))
    capture.add_file("functions-framework", tmp_path / "function.log")

    assert status == (200 if where == "token" else 500)  # a 422 is permanent, a 500 redelivered
    assert isinstance(answer, Exception)
    assert_nothing_echoed_leaks(capture, secrets, echoes, [str(answer)], doctor)


def test_echoed_static_bearer_token(
    airflow: LocalAirflow,
    capture: Capture,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if airflow.major == "2":
        pytest.skip("Airflow 2's basic-auth API takes no bearer token; Airflow 3 covers the path")
    secrets = Secrets()
    token = airflow.token()
    secrets.add("AIRFLOW_TOKEN", token, token=True)
    echoes = echoing("500-text", TRIGGER, DAGS)
    with EchoFront(airflow.url, echoes) as front:
        env = {"AIRFLOW_URL": front.url, "AIRFLOW_TOKEN": token, "DAG_ID": DAG}
        setenv(clean_env, {**env, "DAGTRIGGER_DEADLINE": "2"})
        answer = run_lambda(capture, bridge_event("echo-bearer"))
        doctor = run_doctor(capture, capsys)

    assert isinstance(answer, Exception)
    assert_nothing_echoed_leaks(capture, secrets, echoes, [str(answer)], doctor)


ECHOING_ENVIRONMENT = "projects/acme-data/locations/europe-west1/environments/echoing"


@pytest.mark.parametrize("case", ["composer-front", "composer-api", "iap"])
def test_echoed_google_paths(
    airflow: LocalAirflow,
    google: Google,
    capture: Capture,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    case: str,
) -> None:
    if case == "composer-front":  # Composer's web server front echoes, with the access token
        echoes = echoing("500-html", TRIGGER, DAGS)
        front = EchoFront(google.composer.url, echoes).start()
        google.environments.environments[ECHOING_ENVIRONMENT] = composer_environment(
            ECHOING_ENVIRONMENT, front.url, COMPOSER_IMAGES[airflow.major]
        )
        env = google.env(COMPOSER_ENVIRONMENT=ECHOING_ENVIRONMENT)
    elif case == "composer-api":  # the Composer API echoes `environments.get`
        echoes = echoing("500-text", r"/environments/")
        front = EchoFront(google.environments.url, echoes).start()
        env = google.env(COMPOSER_API_ENDPOINT=front.url)
    else:  # IAP's front echoes, with the ID token
        echoes = echoing("500-text", TRIGGER, DAGS)
        front = EchoFront(google.iap.url, echoes).start()
        env = google.env(
            COMPOSER_ENVIRONMENT="", AIRFLOW_URL=front.url, IAP_CLIENT_ID=IAP_CLIENT_ID
        )
    env |= {"DAGTRIGGER_DEADLINE": "2"}  # every case fails transiently: retried until then
    try:
        with FunctionsServer("handle_cloud_event", env, tmp_path / "function.log") as function:
            status = function.post_binary(*gcs_event(f"echo-google-{case}"))
            failed = [e["message"] for e in function.log_entries() if e.get("outcome") == "failed"]
        setenv(clean_env, env)
        doctor = run_doctor(capture, capsys)
    finally:
        front.stop()
    capture.add_file("functions-framework", tmp_path / "function.log")

    assert status == 500  # redelivered: every case fails transiently
    assert len(failed) == 1
    assert_nothing_echoed_leaks(capture, google_secrets(google), echoes, failed, doctor)


@pytest.mark.parametrize("auth", ["mwaa", "mwaa-web"])
def test_echoed_mwaa_paths(
    mwaa: Mwaa,
    capture: Capture,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    auth: str,
) -> None:
    clean_env.setenv("AIRFLOW_AUTH", auth)
    mwaa.echoes.rules = [EchoRule(TRIGGER, "500-text"), EchoRule(DAGS, "500-text")]

    answer = run_lambda(capture, bridge_event(f"echo-{auth}"))
    doctor = run_doctor(capture, capsys)

    assert isinstance(answer, Exception)
    assert_nothing_echoed_leaks(
        capture, mwaa.secrets(), mwaa.echoes, [str(answer)], doctor, saw=(BOTOCORE_BODY,)
    )
    # The access key id is no secret to AWS, but it names the key: dagtrigger never shows it.
    # (botocore's own DEBUG line for each request shows the signed headers, and so the key id.)
    key_id = Secrets()
    key_id.add("the AWS access key id", DEFAULT_ACCESS_KEY)
    assert [
        leak for leak in capture.leaks(key_id) if not leak[1].startswith("logger botocore")
    ] == []


@pytest.mark.parametrize("style", ["trigger-500-text", "token-422-json"])
def test_echoed_secrets_manager_credentials(
    airflow: LocalAirflow,
    capture: Capture,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    style: str,
) -> None:
    if style.startswith("token") and airflow.major == "2":
        pytest.skip("Airflow 2 issues no token: basic auth sends no password in a body")
    where, _, kind = style.partition("-")
    echoes = echoing(kind, TOKEN) if where == "token" else echoing(kind, TRIGGER, DAGS)
    secrets = Secrets()
    secrets.add_basic("admin", airflow.admin_password)
    secrets.add("the moto secret access key", MOTO_SECRET_KEY)
    airflow_jwt_prefix(airflow, secrets)
    credentials = {"username": "admin", "password": airflow.admin_password}
    with (
        EchoFront(airflow.url, echoes) as front,
        secrets_manager(capture, clean_env, f"dagtrigger/echo-{style}", credentials) as arn,
    ):
        env = {"AIRFLOW_URL": front.url, "AIRFLOW_SECRET_ARN": arn, "DAG_ID": DAG}
        setenv(clean_env, {**env, "DAGTRIGGER_DEADLINE": "2"})
        answer = run_lambda(capture, bridge_event(f"echo-secretsmanager-{style}"))
        doctor = run_doctor(capture, capsys)

    assert isinstance(answer, Exception)
    assert_nothing_echoed_leaks(
        capture, secrets, echoes, [str(answer)], doctor, saw=(BOTOCORE_BODY,)
    )


def test_the_detector_sees_every_form_of_a_secret() -> None:
    secrets = Secrets()
    secrets.add_basic("admin", "s3cr3t-pa55word")
    secrets.add("a token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl", token=True)
    assert secrets.leaks("x s3cr3t-pa55word x") == ["the password"]
    assert "the basic auth header value" in secrets.leaks("Basic YWRtaW46czNjcjN0LXBhNTV3b3Jk")
    (encoded,) = secrets.leaks(base64.b64encode(b"s3cr3t-pa55word").decode())
    assert encoded.startswith("the password (base64")
    assert secrets.leaks("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvdGhlciJ9.x") == [
        "a token (first 16 characters)"
    ]
    assert secrets.leaks("created run gcs__finalized__b_x.csv__0123") == []
