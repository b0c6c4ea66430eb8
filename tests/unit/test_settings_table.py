"""SETTINGS_TABLE is the one statement of the environment contract: what reads it, and the README
table that documents it, agree with it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from dagtrigger.doctor.config import AUTH_LABELS
from dagtrigger.errors import ConfigurationError
from dagtrigger.settings import SETTINGS_TABLE, AuthMode, Setting, Settings

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_HEADER = "| variable | meaning |"
# how a row states a default: "(default 10)", "(default `Op`; ...", the value bare or in backticks
STATED_DEFAULT = re.compile(r"\(default (`?)(?P<value>[^`;)\s]+)\1[;)]")


def readme_rows() -> list[tuple[str, str]]:
    """(variable, meaning) for each variable of the README's configuration table, in its order."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(TABLE_HEADER) + 2  # after the header and its |---|---| line
    rows: list[tuple[str, str]] = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        names_cell, meaning = line.strip("|").split("|", 1)
        names = re.findall(r"`([A-Za-z_]+)`", names_cell)
        assert names, f"a README configuration row names no `VARIABLE`: {line}"
        rows.extend((name, meaning.strip()) for name in names)
    return rows


def readme_meaning(setting: Setting) -> str:
    return dict(readme_rows()).get(setting.name, "")


def stated_default(meaning: str) -> str | None:
    match = STATED_DEFAULT.search(meaning)
    assert match or "default" not in meaning, f"write a default as '(default VALUE)': {meaning}"
    return match["value"] if match else None


def test_the_readme_names_every_variable_of_the_table_once_and_no_other() -> None:
    documented = [name for name, _ in readme_rows()]
    table = [setting.name for setting in SETTINGS_TABLE]

    assert sorted(documented) == sorted(table)


@pytest.mark.parametrize("setting", SETTINGS_TABLE, ids=lambda setting: setting.name)
def test_the_readme_states_the_default_of_the_table(setting: Setting) -> None:
    assert stated_default(readme_meaning(setting)) == setting.default


@pytest.mark.parametrize(
    "setting",
    [setting for setting in SETTINGS_TABLE if setting.choices],
    ids=lambda setting: setting.name,
)
def test_the_readme_names_every_choice_of_the_table(setting: Setting) -> None:
    meaning = readme_meaning(setting)

    assert [choice for choice in setting.choices if f"`{choice}`" not in meaning] == []


def test_the_readme_check_reads_a_default_only_in_its_one_form() -> None:
    assert stated_default("seconds (default 30); then the platform redelivers") == "30"
    assert stated_default("the Airflow role (default `Op`)") == "Op"
    assert stated_default("requests per second") is None
    with pytest.raises(AssertionError, match="write a default as"):
        stated_default("requests per second (default 10 on MWAA)")


def test_settings_reads_exactly_the_variables_the_table_gives_it() -> None:
    read: set[str] = set()

    class RecordingEnv(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            read.add(key)
            return super().get(key, default)

        def __getitem__(self, key: str) -> str:
            read.add(key)
            return super().__getitem__(key)

    Settings.from_env(RecordingEnv(DAG_ID="etl"))

    assert read == {setting.name for setting in SETTINGS_TABLE if setting.read_by is None}


def test_clean_env_clears_every_spelling_of_every_variable_of_the_table(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    names = [name for setting in SETTINGS_TABLE for name in setting.names]
    for name in names:
        monkeypatch.setenv(name, "set-by-the-deployment")

    request.getfixturevalue("clean_env")

    assert "https_proxy" in names
    assert [name for name in names if name in os.environ] == []


def test_the_defaults_of_the_table_are_what_settings_holds_when_nothing_is_set() -> None:
    s = Settings.from_env({"DAG_ID": "etl"})

    assert (s.timeout, s.deadline, s.routes_ttl) == (10.0, 30.0, 300.0)
    assert (s.concurrency, s.max_conf_bytes, s.rate_limit) == (10, 65536, None)
    assert (s.mwaa_airflow_role, s.composer_api_endpoint) == (
        "Op",
        "https://composer.googleapis.com",
    )
    assert s == Settings(
        airflow_url=None,
        auth=AuthMode.NONE,
        username=None,
        password=None,
        token=None,
        api_version=None,
        dag_id="etl",
        routes=None,
        timeout=10.0,
        deadline=30.0,
        routes_ttl=300.0,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "DAGTRIGGER_RATE_LIMIT",
            "10001",
            "DAGTRIGGER_RATE_LIMIT='10001' is not a rate between 0 and 10000 requests per "
            "second: e.g. DAGTRIGGER_RATE_LIMIT=10.",
        ),
        (
            "DAGTRIGGER_MAX_CONF_BYTES",
            "0",
            "DAGTRIGGER_MAX_CONF_BYTES='0' is not a positive whole number of at most 18 digits: "
            "e.g. DAGTRIGGER_MAX_CONF_BYTES=65536.",
        ),
        (
            "DAGTRIGGER_CONCURRENCY",
            "0" * 18 + "1",
            f"DAGTRIGGER_CONCURRENCY='{'0' * 18}1' is not a positive whole number of at most "
            "18 digits: e.g. DAGTRIGGER_CONCURRENCY=10.",
        ),
        (
            "AIRFLOW_TIMEOUT",
            "inf",
            "AIRFLOW_TIMEOUT='inf' is not a number of seconds between 0 and 3600: "
            "e.g. AIRFLOW_TIMEOUT=10.",
        ),
        (
            "MWAA_AIRFLOW_ROLE",
            "Op\tAdmin",
            "MWAA_AIRFLOW_ROLE='Op\\tAdmin' has a tab (U+0009) at character 3: set it exactly "
            "as issued, e.g. MWAA_AIRFLOW_ROLE=Op.",
        ),
    ],
)
def test_a_value_out_of_bounds_is_refused_naming_the_variable_and_a_good_value(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"DAG_ID": "etl", name: value})

    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("name", "value"), [("DAGTRIGGER_RATE_LIMIT", "10000"), ("AIRFLOW_TIMEOUT", "3599.9")]
)
def test_a_rate_may_equal_its_upper_bound_and_seconds_come_close_to_theirs(
    name: str, value: str
) -> None:
    s = Settings.from_env({"DAG_ID": "etl", name: value})

    assert float(value) in (s.rate_limit, s.timeout)


def test_every_auth_mode_has_a_doctor_label() -> None:
    assert set(AUTH_LABELS) == set(AuthMode)
