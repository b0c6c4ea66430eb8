"""The environment contract: every variable is read, checked at start, and explained when wrong."""

from __future__ import annotations

import pytest

from dagtrigger.errors import ConfigurationError
from dagtrigger.settings import Settings

SECRET = "s3cr3t-Pa55word"


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
