"""dagtrigger on the oldest Airflow 2 and 3 users run (the other tests use 2.11 and 3.3): the
checks `make compat` runs on every version, each against a server of its own, driven by the CLI
as a user drives it: one sample event sent three times (one run), a run triggered and waited for
until success, doctor, and `api GET /dags`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.compat import CI_VERSIONS, check_version, format_table

pytestmark = pytest.mark.airflow


@pytest.mark.parametrize("version", CI_VERSIONS)
def test_dagtrigger_works_on_the_oldest_release_of_each_line(version: str, tmp_path: Path) -> None:
    report = check_version(version, tmp_path)

    failures = [f"{check.name}: {check.detail}" for check in report.checks if not check.ok]
    assert report.ok, "\n".join([format_table([report]), *failures])
