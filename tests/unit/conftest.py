"""Fixtures the CLI test modules share."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dagtrigger.cli import main

Result = tuple[int, list[str], list[str]]  # exit code, stdout lines, stderr lines

# Every setting of the environment contract: a CLI test starts from none of them.
SETTINGS_VARIABLES = (
    "DAG_ID", "AIRFLOW_URL", "AIRFLOW_AUTH", "AIRFLOW_USERNAME", "AIRFLOW_PASSWORD",
    "AIRFLOW_TOKEN", "AIRFLOW_API_VERSION", "DAGTRIGGER_ROUTES", "AIRFLOW_TIMEOUT",
    "DAGTRIGGER_DEADLINE", "DAGTRIGGER_ROUTES_TTL", "COMPOSER_ENVIRONMENT", "MWAA_ENVIRONMENT",
    "IAP_CLIENT_ID", "AIRFLOW_SECRET_ARN", "MWAA_AIRFLOW_ROLE", "COMPOSER_API_ENDPOINT",
    "DAGTRIGGER_RATE_LIMIT", "DAGTRIGGER_CONCURRENCY", "DAGTRIGGER_MAX_CONF_BYTES",
)  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Runs `dagtrigger ARGV...` in-process: (exit code, stdout lines, stderr lines)."""

    def run(*argv: str) -> Result:
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return code, out.splitlines(), err.splitlines()

    return run
