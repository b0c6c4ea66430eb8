"""The harness's PostgreSQL: found where Debian puts it, or a failure that names the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import local_postgres
from tools.local_airflow import LocalAirflow


def test_without_server_programs_the_error_names_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local_postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(local_postgres.glob, "glob", lambda pattern: [])
    with pytest.raises(RuntimeError, match="apt-get install postgresql"):
        local_postgres.find_server_binaries()


def test_debians_versioned_directory_is_searched_newest_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for version in ("13", "15"):
        (tmp_path / version / "bin").mkdir(parents=True)
        for program in ("initdb", "postgres"):
            (tmp_path / version / "bin" / program).touch()
    monkeypatch.setattr(local_postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(
        local_postgres.glob,
        "glob",
        lambda pattern: [str(tmp_path / v / "bin") for v in ("13", "15")],
    )
    assert local_postgres.find_server_binaries() == tmp_path / "15" / "bin"


def test_the_database_is_sqlite_or_postgresql(tmp_path: Path) -> None:
    assert LocalAirflow("3", tmp_path)._postgres is None
    assert LocalAirflow("3", tmp_path, database="postgresql")._postgres is not None
    with pytest.raises(ValueError, match="sqlite or postgresql"):
        LocalAirflow("3", tmp_path, database="mysql")
