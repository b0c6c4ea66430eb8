"""Fixtures the CLI test modules share."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dagtrigger.cli import main
from dagtrigger.settings import SETTINGS_TABLE

Result = tuple[int, list[str], list[str]]  # exit code, stdout lines, stderr lines

# Every variable of the environment contract, in each spelling read: a CLI test starts from none.
SETTINGS_VARIABLES = tuple(name for setting in SETTINGS_TABLE for name in setting.names)


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
