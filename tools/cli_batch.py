"""Run many command lines through one CLI in one process: `tools/docs_check.py` uses it so that
gcloud and the AWS CLI start once, not once per documented command (each start costs about a
second of CPU).

    <gcloud's Python> tools/cli_batch.py gcloud SDK_ROOT COMMANDS.json RESULTS.json
    <the AWS CLI's Python> tools/cli_batch.py aws - COMMANDS.json RESULTS.json

COMMANDS.json holds a list of argument lists (without the program's name); RESULTS.json gets,
for each, [exit code, what it printed]. The command runs as the program itself runs it: gcloud's
calliope CLI (`Execute`) and the AWS CLI's driver (`main`), the parsers and validation included;
what it prints is read from file descriptors 1 and 2. Only the standard library here: this runs
under the CLI's own Python, not the project's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def captured(call: Callable[[], Any]) -> tuple[int | str, str]:
    """Run `call` with file descriptors 1 and 2 going to a file: its exit code and output."""
    with tempfile.TemporaryFile() as output:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(output.fileno(), 1)
        os.dup2(output.fileno(), 2)
        code: int | str
        try:
            result = call()
            code = result if isinstance(result, int) else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # what the CLI would report as a crash
            code = f"{type(exc).__name__}: {exc}"
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        output.seek(0)
        return code, output.read().decode("utf-8", errors="replace")


def gcloud_runner(sdk_root: str) -> Callable[[list[str]], Callable[[], Any]]:
    lib = Path(sdk_root) / "lib"
    sys.path[:0] = [str(lib), str(lib / "third_party")]
    from googlecloudsdk import gcloud_main  # type: ignore[import-not-found]

    cli = gcloud_main.CreateCLI([])
    return lambda argv: lambda: cli.Execute(argv)


def aws_runner() -> Callable[[list[str]], Callable[[], Any]]:
    from awscli.clidriver import create_clidriver  # type: ignore[import-not-found]

    return lambda argv: lambda: create_clidriver().main(argv)


def main(argv: list[str]) -> int:
    program, sdk_root, commands_path, results_path = argv
    sys.argv[0] = program  # the name the CLIs print in their usage errors
    runner = gcloud_runner(sdk_root) if program == "gcloud" else aws_runner()
    commands = json.loads(Path(commands_path).read_text())
    results = [captured(runner(command)) for command in commands]
    Path(results_path).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
