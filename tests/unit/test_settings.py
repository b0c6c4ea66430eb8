"""The environment contract: every variable is read, checked at start, and explained when wrong."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagtrigger.auth import aws_secret
from dagtrigger.errors import ConfigurationError
from dagtrigger.runtime import build_client
from dagtrigger.settings import Settings
from tests.unit.conftest import SETTINGS_VARIABLES

SECRET = "s3cr3t-Pa55word"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:airflow-AbCdEf"


def settings(**env: str) -> Settings:
    return Settings.from_env({"DAG_ID": "etl", **env})


def test_minimal_deployment_gets_the_documented_defaults() -> None:
    s = Settings.from_env({"DAG_ID": "etl"})

    assert s.dag_id == "etl"
    assert s.routes is None
    assert s.airflow_url is None
    assert s.auth == "none"
    assert s.api_version is None
    assert (s.timeout, s.deadline, s.routes_ttl) == (10.0, 30.0, 300.0)


def test_every_variable_is_read() -> None:
    s = Settings.from_env(
        {
            "DAG_ID": "etl",
            "DAGTRIGGER_ROUTES": '[{"dag_id": "etl"}]',
            "AIRFLOW_URL": "https://airflow.example.com",
            "AIRFLOW_AUTH": "basic",
            "AIRFLOW_USERNAME": "bot",
            "AIRFLOW_PASSWORD": SECRET,
            "AIRFLOW_TOKEN": "tok",
            "AIRFLOW_API_VERSION": "v1",
            "AIRFLOW_TIMEOUT": "2.5",
            "DAGTRIGGER_DEADLINE": "45",
            "DAGTRIGGER_ROUTES_TTL": "60",
        }
    )

    assert s == Settings(
        airflow_url="https://airflow.example.com",
        auth="basic",
        username="bot",
        password=SECRET,
        token="tok",
        api_version="v1",
        dag_id="etl",
        routes='[{"dag_id": "etl"}]',
        timeout=2.5,
        deadline=45.0,
        routes_ttl=60.0,
    )


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DAGTRIGGER_ROUTES", "AIRFLOW_AUTH", "AIRFLOW_TOKEN", "AIRFLOW_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAG_ID", "from_env")
    monkeypatch.setenv("AIRFLOW_TIMEOUT", "3")

    s = Settings.from_env()

    assert (s.dag_id, s.timeout) == ("from_env", 3.0)


def test_routes_alone_are_enough() -> None:
    s = Settings.from_env({"DAGTRIGGER_ROUTES": "/etc/dagtrigger/routes.json"})

    assert (s.dag_id, s.routes) == (None, "/etc/dagtrigger/routes.json")


@pytest.mark.parametrize(
    ("env", "auth"),
    [
        pytest.param({"AIRFLOW_TOKEN": "tok"}, "bearer", id="token-means-bearer"),
        pytest.param(
            {"AIRFLOW_TOKEN": "tok", "AIRFLOW_USERNAME": "bot", "AIRFLOW_PASSWORD": SECRET},
            "bearer",
            id="token-wins-over-password",
        ),
        pytest.param(
            {"AIRFLOW_USERNAME": "bot", "AIRFLOW_PASSWORD": SECRET},
            None,
            id="password-waits-for-the-api-version",
        ),
        pytest.param({}, "none", id="nothing-means-none"),
        pytest.param({"AIRFLOW_TOKEN": "   "}, "none", id="blank-counts-as-unset"),
        pytest.param(
            {"AIRFLOW_AUTH": "JWT", "AIRFLOW_USERNAME": "bot", "AIRFLOW_PASSWORD": SECRET},
            "jwt",
            id="explicit-mode-any-case",
        ),
        pytest.param(
            {"AIRFLOW_AUTH": "basic", "AIRFLOW_USERNAME": "bot", "AIRFLOW_PASSWORD": SECRET},
            "basic",
            id="explicit-basic",
        ),
        pytest.param(
            {"AIRFLOW_AUTH": "none", "AIRFLOW_TOKEN": "tok"}, "none", id="explicit-none-wins"
        ),
    ],
)
def test_auth_is_detected_from_the_credentials_given(env: dict[str, str], auth: str | None) -> None:
    assert settings(**env).auth == auth


@pytest.mark.parametrize(
    ("api_version", "auth"), [("v2", "jwt"), ("v1", "basic"), ("experimental", "basic")]
)
def test_a_password_means_jwt_on_airflow_3_and_basic_before(api_version: str, auth: str) -> None:
    s = settings(AIRFLOW_USERNAME="bot", AIRFLOW_PASSWORD=SECRET)

    assert s.password_auth_for(api_version) == auth


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        pytest.param(
            {"AIRFLOW_AUTH": "kerberos"},
            ["AIRFLOW_AUTH='kerberos'", "none, basic, jwt, bearer"],
            id="unknown-auth",
        ),
        pytest.param(
            {"AIRFLOW_AUTH": "basic", "AIRFLOW_USERNAME": "bot"},
            ["AIRFLOW_AUTH=basic", "AIRFLOW_USERNAME and AIRFLOW_PASSWORD", "set both"],
            id="basic-without-password",
        ),
        pytest.param(
            {"AIRFLOW_AUTH": "jwt", "AIRFLOW_PASSWORD": SECRET},
            ["AIRFLOW_AUTH=jwt", "AIRFLOW_USERNAME and AIRFLOW_PASSWORD"],
            id="jwt-without-username",
        ),
        pytest.param(
            {"AIRFLOW_AUTH": "bearer", "AIRFLOW_USERNAME": "bot", "AIRFLOW_PASSWORD": SECRET},
            ["AIRFLOW_AUTH=bearer", "AIRFLOW_TOKEN"],
            id="bearer-without-token",
        ),
        pytest.param(
            {"AIRFLOW_USERNAME": "bot"},
            ["AIRFLOW_PASSWORD is not set", "set both AIRFLOW_USERNAME and AIRFLOW_PASSWORD"],
            id="username-alone",
        ),
        pytest.param(
            {"AIRFLOW_PASSWORD": SECRET},
            ["AIRFLOW_USERNAME is not set", "set both AIRFLOW_USERNAME and AIRFLOW_PASSWORD"],
            id="password-alone",
        ),
        pytest.param(
            {"AIRFLOW_API_VERSION": "v3"},
            ["AIRFLOW_API_VERSION='v3'", "experimental, v1, v2", "or unset it"],
            id="unknown-api-version",
        ),
        pytest.param(
            {"AIRFLOW_URL": "airflow.example.com"},
            ["AIRFLOW_URL='airflow.example.com'", "not an http(s) URL", "https://"],
            id="url-without-scheme",
        ),
        pytest.param(
            {"AIRFLOW_URL": "ftp://airflow.example.com"},
            ["AIRFLOW_URL='ftp://airflow.example.com'", "not an http(s) URL"],
            id="url-not-http",
        ),
        pytest.param(
            {"AIRFLOW_URL": "https://airflow.example.com/home?tab=dags"},
            ["AIRFLOW_URL=", "query or fragment", "e.g. https://airflow.example.com/home."],
            id="url-with-query",
        ),
        pytest.param(
            {"AIRFLOW_TIMEOUT": "ten"},
            ["AIRFLOW_TIMEOUT='ten'", "between 0 and 3600", "AIRFLOW_TIMEOUT=10"],
            id="timeout-not-a-number",
        ),
        pytest.param(
            {"AIRFLOW_TIMEOUT": "0"},
            ["AIRFLOW_TIMEOUT='0'", "between 0 and 3600"],
            id="timeout-zero",
        ),
        pytest.param(
            {"AIRFLOW_TIMEOUT": "nan"},
            ["AIRFLOW_TIMEOUT='nan'", "between 0 and 3600"],
            id="timeout-nan",
        ),
        pytest.param(
            {"DAGTRIGGER_DEADLINE": "-5"},
            ["DAGTRIGGER_DEADLINE='-5'", "between 0 and 3600", "DAGTRIGGER_DEADLINE=30"],
            id="deadline-negative",
        ),
        pytest.param(
            {"DAGTRIGGER_DEADLINE": "3600"},
            ["DAGTRIGGER_DEADLINE='3600'", "between 0 and 3600"],
            id="deadline-an-hour",
        ),
        pytest.param(
            {"DAGTRIGGER_ROUTES_TTL": "5m"},
            ["DAGTRIGGER_ROUTES_TTL='5m'", "between 0 and 3600", "DAGTRIGGER_ROUTES_TTL=300"],
            id="ttl-with-unit",
        ),
        pytest.param(
            {"DAGTRIGGER_CONCURRENCY": "1" * 5000},  # int() refuses past 4300 digits
            ["DAGTRIGGER_CONCURRENCY='111", "at most 18 digits", "DAGTRIGGER_CONCURRENCY=10"],
            id="concurrency-of-5000-digits",
        ),
    ],
)
def test_a_wrong_setting_names_the_variable_and_the_fix(
    env: dict[str, str], fragments: list[str]
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(**env)

    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message
    assert SECRET not in message


def test_neither_dag_id_nor_routes_names_both() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"AIRFLOW_URL": "https://airflow.example.com"})

    message = str(caught.value)
    assert "DAG_ID=<dag id>" in message
    assert "DAGTRIGGER_ROUTES to a JSON list" in message


def test_blank_dag_id_and_routes_count_as_missing() -> None:
    with pytest.raises(ConfigurationError, match="Neither DAG_ID nor DAGTRIGGER_ROUTES"):
        Settings.from_env({"DAG_ID": " ", "DAGTRIGGER_ROUTES": ""})


def test_airflow_url_is_required_only_when_airflow_is_called() -> None:
    s = settings()

    with pytest.raises(ConfigurationError) as caught:
        s.require_airflow_url()

    message = str(caught.value)
    assert "AIRFLOW_URL is not set" in message
    assert "AIRFLOW_URL=https://airflow.example.com" in message


@pytest.mark.parametrize(
    ("url", "suggested"),
    [
        ("https://airflow.example.com/api/v1", "AIRFLOW_URL=https://airflow.example.com "),
        ("https://airflow.example.com/api/v2/", "AIRFLOW_URL=https://airflow.example.com "),
        ("http://10.0.0.5:8080/airflow/api/v1", "AIRFLOW_URL=http://10.0.0.5:8080/airflow "),
        ("https://af.example.com/api/experimental", "AIRFLOW_URL=https://af.example.com "),
        ("https://af.example.com/auth/token", "AIRFLOW_URL=https://af.example.com "),
    ],
)
def test_an_api_url_is_refused_with_the_base_url_to_use_instead(url: str, suggested: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(AIRFLOW_URL=url)

    message = str(caught.value)
    assert suggested in message
    assert "dagtrigger adds the API path itself" in message


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://airflow.example.com/", "https://airflow.example.com"),
        ("https://example.com/airflow//", "https://example.com/airflow"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_trailing_slashes_are_stripped_from_the_url(url: str, stored: str) -> None:
    s = settings(AIRFLOW_URL=url)

    assert s.airflow_url == stored
    assert s.require_airflow_url() == stored


def test_the_cli_tests_clear_every_variable_settings_read() -> None:
    read: set[str] = set()

    class RecordingEnv(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            read.add(key)
            return super().get(key, default)

    Settings.from_env(RecordingEnv(DAG_ID="etl"))

    assert read - set(SETTINGS_VARIABLES) == set()


# --- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"https://svc:{SECRET}@airflow.example.com",
        f"https://{SECRET}@airflow.example.com",
        f"https://svc:{SECRET}/?#@airflow.example.com",  # / ? # unescaped would split elsewhere
        f"svc:{SECRET}@airflow.example.com",
    ],
)
def test_credentials_in_the_url_are_refused_without_showing_them(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(AIRFLOW_URL=url)

    message = str(caught.value)
    assert "***@airflow.example.com" in message
    assert (
        "put the credentials in AIRFLOW_USERNAME / AIRFLOW_PASSWORD (or AIRFLOW_TOKEN)" in message
    )
    assert SECRET not in message


def test_credentials_in_the_composer_endpoint_are_refused_without_showing_them() -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(COMPOSER_API_ENDPOINT=f"https://me:{SECRET}@composer.googleapis.com")

    message = str(caught.value)
    assert "COMPOSER_API_ENDPOINT='https://***@composer.googleapis.com'" in message
    assert "Google credentials" in message
    assert SECRET not in message


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1", "port", "1_0", "٨٠", "0000080"])
@pytest.mark.parametrize("name", ["AIRFLOW_URL", "COMPOSER_API_ENDPOINT"])
def test_a_port_that_is_not_a_number_from_1_to_65535_is_refused(name: str, port: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(**{name: f"https://airflow.example.com:{port}"})

    message = str(caught.value)
    assert f"{name}='https://airflow.example.com:{port}' has port {port!r}" in message
    assert "not a number from 1 to 65535" in message


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://[::1", "use brackets only around an IPv6 address"),
        ("http://airflow]", "use brackets only around an IPv6 address"),
        ("http://[10.0.0.5]", "use brackets only around an IPv6 address"),
        ("http://[v1.x]", "[v1.x] is not an IPv6 address"),
        ("http://[::1]x", "'x' after the IPv6 address"),
        ("http://exa mple.com", "a space (U+0020) at character 11"),
        ("http://airflow\n.example.com", "a line break (U+000A) at character 15"),
        ("http://airflow.example.com/\x7f", "a control character (U+007F)"),
        ("http://airflow.example.com/\u200b", "an invisible character (U+200B)"),
        ("http://airflow\udcff.example.com", "a byte that is not UTF-8 (U+DCFF)"),
        ("http://:8080", "has no host name"),
        ("http://a..example.com", "'a..example.com' is not a host name"),
        ("http://ex%41mple.com", "'ex%41mple.com' is not a host name"),
        ("http://1.2.3.4.5", "'1.2.3.4.5' is not an IPv4 address"),
        ("http://10.0.0.256:8080", "'10.0.0.256' is not an IPv4 address"),
        ("http://airflow.example.com/%", "use %25 for a literal %"),
        ("http://airflow.example.com/%zz", "use %25 for a literal %"),
        ("http://airflow.example.com?", "has a query or fragment"),
        ("http://airflow.example.com/#", "has a query or fragment"),
        ("http://☃.example", "'☃.example' is not a valid internationalised domain name"),
        ("http://xn--.example", "'xn--' is not a valid internationalised domain name"),
    ],
)
@pytest.mark.parametrize("name", ["AIRFLOW_URL", "COMPOSER_API_ENDPOINT"])
def test_a_url_no_request_could_use_is_refused_naming_the_fault(
    name: str, url: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(**{name: url})

    message = str(caught.value)
    assert message.startswith(f"{name}={url!r}")
    assert fragment in message


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://München.example/airflow", "https://xn--mnchen-3ya.example/airflow"),
        ("http://ÿ.example:8080/", "http://xn--wda.example:8080"),
        ("https://例え.テスト", "https://xn--r8jz45g.xn--zckzah"),
        # full-width "example", which UTS 46 maps to ASCII as browsers do
        ("https://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "https://example.com"),
        ("HTTPS://Airflow.Example.COM/Base/", "https://airflow.example.com/Base"),
        ("http://airflow.example.com:08080", "http://airflow.example.com:8080"),
        ("http://airflow.example.com:/", "http://airflow.example.com"),
        ("https://airflow.example.com/é", "https://airflow.example.com/%C3%A9"),
    ],
)
def test_the_url_is_kept_in_the_ascii_form_a_request_sends(url: str, sent: str) -> None:
    assert settings(AIRFLOW_URL=url).airflow_url == sent


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]:8080",
        "http://[fe80::1%25eth0]:8080",
        "http://airflow_webserver:8080",
        "https://xn--mnchen-3ya.example",
        "https://airflow.example.com.",
        "http://10.0.0.5:8080/airflow",
    ],
)
def test_unusual_but_valid_urls_are_kept_as_they_are(url: str) -> None:
    assert settings(AIRFLOW_URL=url).airflow_url == url


URL_PIECES = st.sampled_from(
    [
        "[", "]", ":", "@", "/", "%", "%4", "%41", "?", "#", ".", "..", "xn--", "::1", "10.0.0.5",
        "8080", "99999", "-1", "_", " ", "\n", "\t", "ÿ", "☃", "ß", "\u200b", "a", "example",
    ]
)  # fmt: skip


@given(
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", ""]),
    st.lists(URL_PIECES | st.text(max_size=3), max_size=10).map("".join),
)
def test_any_url_is_refused_in_words_or_kept_in_a_form_a_request_can_send(
    scheme: str, rest: str
) -> None:
    try:
        url = settings(AIRFLOW_URL=scheme + rest).airflow_url
    except ConfigurationError:
        return
    if url is None:  # blank: not set
        return

    parts = urlsplit(url)
    assert url.isascii() and url.isprintable() and " " not in url
    assert parts.scheme in ("http", "https") and parts.hostname
    assert parts.port is None or 0 < parts.port <= 65535
    assert not (parts.username or parts.query or parts.fragment)


def test_idna_is_imported_only_for_a_host_beyond_ascii() -> None:
    script = (
        "import sys\n"
        "from dagtrigger.settings import Settings\n"
        "ascii_url = Settings.from_env({'DAG_ID': 'e', 'AIRFLOW_URL': 'https://a.example'})\n"
        "before = 'idna' in sys.modules\n"
        "idn = Settings.from_env({'DAG_ID': 'e', 'AIRFLOW_URL': 'https://bücher.example'})\n"
        "print(before, idn.airflow_url)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )

    assert done.stdout.split() == ["False", "https://xn--bcher-kva.example"]


# --- values sent in headers or as credentials ----------------------------------------------------


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (f"{SECRET}\nX-Injected: 1", f"a line break (U+000A) at character {len(SECRET) + 1}"),
        (f"{SECRET} {SECRET}", f"a space (U+0020) at character {len(SECRET) + 1}"),
        (f"{SECRET}\x7f", "a control character (U+007F)"),
        (f"{SECRET}é", "a character beyond ASCII (U+00E9)"),
        (f"Bearer {SECRET}", "without 'Bearer ', which dagtrigger adds"),
    ],
)
def test_a_token_no_header_can_carry_is_refused_without_showing_it(
    token: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(AIRFLOW_TOKEN=token)

    message = str(caught.value)
    assert message.startswith("AIRFLOW_TOKEN has ")
    assert fragment in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="basic-or-jwt-by-version"),
        pytest.param({"AIRFLOW_API_VERSION": "v1"}, id="basic-by-version"),
        pytest.param({"AIRFLOW_AUTH": "basic"}, id="basic"),
    ],
)
def test_a_colon_in_the_username_is_refused_where_basic_auth_may_send_it(
    env: dict[str, str],
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(AIRFLOW_USERNAME="team:bot", AIRFLOW_PASSWORD=SECRET, **env)

    message = str(caught.value)
    assert "AIRFLOW_USERNAME holds ':' (character 5)" in message
    assert "RFC 7617" in message


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"AIRFLOW_AUTH": "jwt"}, id="jwt"),
        pytest.param({"AIRFLOW_API_VERSION": "v2"}, id="jwt-by-version"),
    ],
)
def test_a_colon_in_the_username_is_kept_where_only_a_jwt_request_sends_it(
    env: dict[str, str],
) -> None:
    s = settings(AIRFLOW_USERNAME="team:bot", AIRFLOW_PASSWORD=SECRET, **env)

    assert s.username == "team:bot"


@pytest.mark.parametrize(
    ("auth", "password", "fragment"),
    [
        (None, f"{SECRET}\x01", "a control character (U+0001)"),
        ("basic", f"{SECRET}\tx", "a tab (U+0009)"),
        ("jwt", f"{SECRET}\udcff", "a byte that is not UTF-8 (U+DCFF)"),
        ("basic", f"{SECRET}\udcff", "a byte that is not UTF-8 (U+DCFF)"),
    ],
)
def test_a_password_that_cannot_be_sent_is_refused_without_showing_it(
    auth: str | None, password: str, fragment: str
) -> None:
    env = {"AIRFLOW_USERNAME": "bot", "AIRFLOW_PASSWORD": password}
    if auth is not None:
        env["AIRFLOW_AUTH"] = auth

    with pytest.raises(ConfigurationError) as caught:
        settings(**env)

    message = str(caught.value)
    assert message.startswith("AIRFLOW_PASSWORD has ")
    assert f"{fragment} at character {len(SECRET) + 1}" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "env",
    [
        pytest.param(
            {"AIRFLOW_AUTH": "jwt", "AIRFLOW_USERNAME": "bot", "AIRFLOW_PASSWORD": "tab\there"},
            id="control-character-in-a-json-body",
        ),
        pytest.param(
            {"AIRFLOW_AUTH": "basic", "AIRFLOW_USERNAME": "bøt", "AIRFLOW_PASSWORD": "pässwörd"},
            id="utf8-in-basic-auth",
        ),
        pytest.param(
            {"AIRFLOW_AUTH": "none", "AIRFLOW_TOKEN": "unused\ntoken"}, id="token-not-sent"
        ),
    ],
)
def test_credentials_that_can_be_sent_as_configured_are_kept(env: dict[str, str]) -> None:
    s = settings(**env)

    assert (s.username, s.password, s.token) == (
        env.get("AIRFLOW_USERNAME"),
        env.get("AIRFLOW_PASSWORD"),
        env.get("AIRFLOW_TOKEN"),
    )


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"IAP_CLIENT_ID": "123 abc"}, "IAP_CLIENT_ID='123 abc' has a space (U+0020)"),
        (
            {"MWAA_ENVIRONMENT": "env", "MWAA_AIRFLOW_ROLE": "Op\nAdmin"},
            "MWAA_AIRFLOW_ROLE='Op\\nAdmin' has a line break (U+000A)",
        ),
        ({"MWAA_ENVIRONMENT": "arn:aws:airflow:eu-west-1:123456789012:environment/env"}, "ARN"),
        ({"MWAA_ENVIRONMENT": "1env"}, "MWAA_ENVIRONMENT='1env' is not an MWAA environment name"),
        ({"MWAA_ENVIRONMENT": "my env"}, "is not an MWAA environment name"),
        ({"MWAA_ENVIRONMENT": "e" * 81}, "is not an MWAA environment name"),
    ],
)
def test_names_sent_to_google_or_aws_are_checked_at_start(
    env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(**env)

    assert fragment in str(caught.value)


@pytest.mark.parametrize("name", ["My_Env-1", "e" * 80])
def test_mwaa_environment_names_aws_allows_are_accepted(name: str) -> None:
    assert settings(MWAA_ENVIRONMENT=name).mwaa_environment == name


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ({"token": f"{SECRET}\n"}, "the 'token' of AIRFLOW_SECRET_ARN=" + SECRET_ARN),
        ({"username": "team:bot", "password": SECRET}, "the 'username' of AIRFLOW_SECRET_ARN="),
        ({"username": "bot", "password": f"{SECRET}\x00"}, "a control character (U+0000)"),
    ],
)
def test_credentials_from_the_secret_get_the_same_checks(
    monkeypatch: pytest.MonkeyPatch, secret: dict[str, str], fragment: str
) -> None:
    monkeypatch.setattr(aws_secret, "read_airflow_secret", lambda arn: secret)
    s = settings(
        AIRFLOW_URL="https://airflow.example.com",
        AIRFLOW_SECRET_ARN=SECRET_ARN,
        AIRFLOW_API_VERSION="v1",  # basic auth, and no request to learn the version
    )

    with pytest.raises(ConfigurationError) as caught:
        build_client(s)

    message = str(caught.value)
    assert fragment in message
    assert SECRET not in message
