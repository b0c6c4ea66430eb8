"""Every documented gcloud, aws and sam command, through the real CLI's argument parser, offline:
`make docs-check`.

Where the commands come from:
- README.md and infra/README.md: the shell code blocks (with `$(...)` inside them) and the inline
  code spans that start with `gcloud `, `aws ` or `sam `. `$VARIABLES` take the values the blocks
  assign before them (a variable used before any block sets it fails the check: the guide must say
  where each value comes from); `<...>` and `$(...)` become placeholders.
- cloudbuild.yaml: each step's script is run by bash as Cloud Build would run it (its
  substitutions filled in, `$$` turned into `$`), in a few deployments (both paths, Pub/Sub only,
  Cloud Storage only, inline JSON routes), with a `gcloud` on PATH that records its arguments;
  the recorded commands are then checked like the others.
- functions/dagtrigger: the fixes dagtrigger and `doctor` print: every string literal (f-string
  fields filled with sample values) is searched for commands in backticks, after `(` or after `: `.

How a command is checked: gcloud with an empty configuration (no account, no project) parses the
whole command line, then stops at authentication; an unknown flag, a missing or invalid argument
is an argument error (exit 2) and an incomplete resource name is "Error parsing [...]". The AWS
CLI and SAM CLI, with no credentials and no configuration, parse and validate the parameters
against the service model, then stop at "Unable to locate credentials". Nothing reaches a cloud.
Also checked: `sam deploy --parameter-overrides` names against the template's Parameters and
their AllowedValues; that every gcloud command in the guides names its project (`--project` or a
full resource name); in cloudbuild.yaml, the deploy's trigger per scenario, its trigger location
and that a JSON value reaches the function intact.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "infra/README.md")
CLIS = ("gcloud", "aws", "sam")
PLACEHOLDER = "placeholder"
SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell)\s*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
COMMAND_START = re.compile(r"(?<![\w./=-])(?:gcloud|aws|sam) (?=[a-z-])")
FOR_LOOP = re.compile(r"^for ([A-Za-z_][A-Za-z0-9_]*) in (\S+)")
ASSIGNMENT = re.compile(r"^([A-Z_][A-Z0-9_]*)=(\"[^\"]*\"|'[^']*'|\$\([^)]*\)|\S*)\s*")
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
ANGLE_PLACEHOLDER = re.compile(r"<[^<>\n]+>")
# f-string fields in dagtrigger's messages, by the expression's source text.
FIELD_VALUES = {
    "project": "my-project",
    "member": "serviceAccount:dagtrigger@my-project.iam.gserviceaccount.com",
    "email": "dagtrigger@my-project.iam.gserviceaccount.com",
    "environment": "my-environment",
    "location": "europe-west1",
    "name": "my-environment",
}


@dataclass(frozen=True)
class Command:
    where: str  # file:line, or file:step for cloudbuild.yaml
    text: str  # as written, for the report
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    command: Command
    ok: bool
    detail: str
    seconds: float = 0.0


# --- finding commands in text ---------------------------------------------------------------------


def command_spans(text: str, *, anywhere: bool) -> Iterator[str]:
    """The commands in `text`. Each starts with a CLI's name (at the start, after `$(`, `(`, `: `,
    `    `&&`, `;` or `|`; anywhere in a shell line when `anywhere`)    `&&`, `;` or `|`; anywhere in a shell line when `anywhere`)`, `;`, `|` or a backtick; anywhere in a shell line when `anywhere`) and ends at the end of the text, a
    backtick, a `)` it did not open, ` (`, or `;`, `&&`, `|`, a redirection outside quotes."""
    for match in COMMAND_START.finditer(text):
        before = text[: match.start()].rstrip()
        if not (anywhere or before == "" or before.endswith(("`", "$(", "(", ":", "&&", ";", "|"))):
            continue
        yield _command_at(text, match.start())


def _command_at(text: str, start: int) -> str:
    depth, quote, index = 0, "", start
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        elif char in "`;|" or text.startswith(("&&", " (", " >", " 2>"), index):
            break
        index += 1
    return text[start:index].strip().rstrip(".,")


def logical_lines(block: str) -> Iterator[tuple[int, str]]:
    """(offset of the first line, the line with its backslash continuations joined), comments and
    blank lines left out."""
    pending: list[str] = []
    first = 0
    for number, line in enumerate(block.splitlines()):
        if not pending:
            first = number
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        joined = " ".join(part.strip() for part in pending)
        pending = []
        if joined and not joined.startswith("#"):
            yield first, joined


def expand(text: str, variables: Mapping[str, str]) -> str:
    """`$(...)` and `<...>` become placeholders, `$NAME` its value; an unknown one raises KeyError."""
    text = _replace_substitutions(text)
    text = ANGLE_PLACEHOLDER.sub(PLACEHOLDER, text)
    return VARIABLE.sub(lambda m: variables[m.group(1)], text)


def _replace_substitutions(text: str) -> str:
    while (start := text.find("$(")) >= 0:
        depth, index = 0, start + 1
        while index < len(text):
            depth += {"(": 1, ")": -1}.get(text[index], 0)
            if depth == 0:
                break
            index += 1
        text = text[:start] + PLACEHOLDER + text[index + 1 :]
    return text


def markdown_commands(path: Path) -> tuple[list[Command], list[str]]:
    """The commands of one Markdown document, and the problems found while reading them."""
    text = path.read_text(encoding="utf-8")
    name = str(path.relative_to(REPO))
    variables: dict[str, str] = {}
    commands: list[Command] = []
    problems: list[str] = []

    def add(line_number: int, raw: str) -> None:
        where = f"{name}:{line_number}"
        try:
            argv = tuple(shlex.split(expand(raw, variables)))
        except KeyError as exc:
            problems.append(f"{where}: ${exc.args[0]} is used before the guide sets it: {raw}")
            return
        except ValueError as exc:
            problems.append(f"{where}: not a shell command ({exc}): {raw}")
            return
        commands.append(Command(where, raw, argv))

    blocks = {match.start(1): match.group(1) for match in SHELL_BLOCK.finditer(text)}
    in_blocks = [(start, start + len(body)) for start, body in blocks.items()]
    # In the order a reader meets them, so that a variable is known from the block that sets it.
    pieces = dict(blocks)
    for match in INLINE_CODE.finditer(text):
        span = match.group(1)
        inside = any(start <= match.start() < end for start, end in in_blocks)
        if not inside and span.startswith(tuple(f"{cli} " for cli in CLIS)):
            pieces[match.start()] = span
    for start, block in sorted(pieces.items()):
        block_line = text.count("\n", 0, start) + 1
        if start not in blocks:
            add(block_line, block)
            continue
        for offset, line in logical_lines(block):
            loop = FOR_LOOP.match(line)
            if loop:  # the loop's variable takes its first value
                variables[loop.group(1)] = expand(loop.group(2), variables)
            rest = line
            while assignment := ASSIGNMENT.match(rest):
                value = assignment.group(2).strip("\"'")
                variables[assignment.group(1)] = expand(value, variables) if value else ""
                rest = rest[assignment.end() :]
            for span in command_spans(line, anywhere=True):
                add(block_line + offset, span)
    return commands, problems


def python_commands(root: Path) -> list[Command]:
    """The commands in dagtrigger's messages (what `doctor` and the errors tell users to run)."""
    commands = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # The parts of an f-string are nodes of their own: read them only as the whole.
        parts = {
            id(part)
            for node in ast.walk(tree)
            if isinstance(node, ast.JoinedStr)
            for part in node.values
        }
        for node in ast.walk(tree):
            text = None if id(node) in parts else _literal_text(node)
            if text is None:
                continue
            for span in command_spans(text, anywhere=False):
                where = f"{path.relative_to(REPO)}:{node.lineno}"  # type: ignore[attr-defined]
                commands.append(Command(where, span, tuple(shlex.split(span))))
    return commands


def _literal_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                source = ast.unparse(value.value) if isinstance(value, ast.FormattedValue) else ""
                # `ctx.google_email` reads as `google_email`, `_project(ctx)` as `project`.
                field = re.sub(r"\(.*\)$", "", source).split(".")[-1].lstrip("_")
                parts.append(FIELD_VALUES.get(field, PLACEHOLDER))
        return "".join(parts)
    return None


# --- cloudbuild.yaml, run as Cloud Build runs it ------------------------------------------------

CLOUD_BUILD_SCENARIOS: dict[str, dict[str, str]] = {
    "Cloud Storage, bucket in the function's region": {"_TRIGGER_BUCKET": "acme-landing"},
    "Pub/Sub only": {},
    "Cloud Storage only, in the EU multi-region": {
        "_TRIGGER_BUCKET": "acme-landing",
        "_TRIGGER_LOCATION": "eu",
    },
    "self-hosted Airflow through a VPC connector": {
        "_COMPOSER_ENVIRONMENT": "",
        "_AIRFLOW_URL": "https://airflow.example.com",
        "_AIRFLOW_AUTH": "google",
        "_VPC_CONNECTOR": "projects/my-project/locations/europe-west1/connectors/dagtrigger",
    },
    "inline JSON routes": {
        "_TRIGGER_BUCKET": "acme-landing",
        "_ROUTES": '[{"dag_id": "load_sales", "match": {"name": "sales/*.csv"}}, {"dag_id": "b"}]',
    },
}
CLOUD_BUILD_COMMON = {
    "_REGION": "europe-west1",
    "_COMPOSER_ENVIRONMENT": "projects/my-project/locations/europe-west1/environments/my-env",
    "_DAG_ID": "load_sales",
    "_SERVICE_ACCOUNT": "dagtrigger@my-project.iam.gserviceaccount.com",
    "_INVOKER_SERVICE_ACCOUNT": "dagtrigger-invoker@my-project.iam.gserviceaccount.com",
    "_BUILD_SERVICE_ACCOUNT": "dagtrigger-build@my-project.iam.gserviceaccount.com",
}
BUILT_INS = {"PROJECT_ID": "my-project", "PROJECT_NUMBER": "123456789012", "BUILD_ID": "b-1"}
CLOUD_BUILD_VARIABLE = re.compile(r"\$\$|\$\{([A-Z_][A-Z0-9_]*)\}|\$([A-Z_][A-Z0-9_]*)")
# The recording gcloud: its arguments as one JSON line.
RECORDING_GCLOUD = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["DOCS_CHECK_RECORD"], "a") as record:
    record.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Cloud Build's substitution: `$_X`, `${_X}` and the built-ins; `$$` is a literal `$`. Cloud
    Build refuses a build whose steps name any other `$X`: so does this (KeyError)."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return values[match.group(1) or match.group(2)]

    return CLOUD_BUILD_VARIABLE.sub(one, text)


def cloud_build_runs(path: Path) -> tuple[list[Command], list[str], list[dict[str, Any]]]:
    """Each scenario through each bash step: the gcloud commands it ran, the problems seen, and the
    recorded runs (scenario, argv list) for the checks on their values."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    defaults = {name: str(value) for name, value in config.get("substitutions", {}).items()}
    commands: list[Command] = []
    problems: list[str] = []
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        bin_dir = Path(scratch) / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "gcloud"
        fake.write_text(RECORDING_GCLOUD)
        fake.chmod(0o755)
        for scenario, overrides in CLOUD_BUILD_SCENARIOS.items():
            values = {**BUILT_INS, **defaults, **CLOUD_BUILD_COMMON, **overrides}
            for step in config["steps"]:
                if step.get("entrypoint") != "bash":
                    continue
                record = Path(scratch) / "record.jsonl"
                record.write_text("")
                where = f"{path.relative_to(REPO)}:{step.get('id')} ({scenario})"
                try:
                    args = [substitute(str(arg), values) for arg in step["args"]]
                    env = dict(
                        item.split("=", 1)
                        for item in (substitute(str(e), values) for e in step.get("env", []))
                    )
                except KeyError as exc:
                    problems.append(f"{where}: ${exc.args[0]} is no substitution (use $$ for bash)")
                    continue
                env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", DOCS_CHECK_RECORD=str(record))
                done = subprocess.run(
                    ["bash", *args], env=env, cwd=scratch, capture_output=True, text=True
                )
                if done.returncode != 0:
                    problems.append(f"{where}: bash exited {done.returncode}: {done.stderr[-500:]}")
                for line in record.read_text().splitlines():
                    argv = ("gcloud", *json.loads(line))
                    commands.append(Command(where, shlex.join(argv), argv))
                    runs.append({"scenario": scenario, "overrides": overrides, "argv": argv})
    return commands, problems, runs


def cloud_build_problems(runs: list[dict[str, Any]]) -> list[str]:
    """What the deploy must do in every scenario, beyond parsing."""
    problems = []
    for run in runs:
        argv, scenario, overrides = run["argv"], run["scenario"], run["overrides"]
        if "--project" not in " ".join(argv) and argv[1:3] != ("functions", "describe"):
            problems.append(f"cloudbuild.yaml ({scenario}): no --project: {shlex.join(argv)}")
        if argv[1:3] != ("functions", "deploy"):
            continue
        triggers = [a for a in argv if a.startswith(("--trigger-bucket", "--trigger-http"))]
        if len(triggers) != 1:
            problems.append(f"cloudbuild.yaml ({scenario}): deploy has triggers {triggers}")
        if "_TRIGGER_LOCATION" in overrides:
            wanted = f"--trigger-location={overrides['_TRIGGER_LOCATION']}"
            if wanted not in argv:
                problems.append(f"cloudbuild.yaml ({scenario}): no {wanted}: {shlex.join(argv)}")
        routes = overrides.get("_ROUTES")
        if routes is not None:
            env_vars = next((a for a in argv if a.startswith("--set-env-vars=")), "")
            if f"DAGTRIGGER_ROUTES={routes}" not in env_vars:
                problems.append(
                    f"cloudbuild.yaml ({scenario}): DAGTRIGGER_ROUTES did not arrive intact: "
                    f"{env_vars}"
                )
    return problems


# --- every Google Cloud command names its project ------------------------------------------------

# Commands whose project is their argument, or that have none.
PROJECT_FROM_ARGUMENT = {("projects",), ("auth",)}


def project_problems(commands: list[Command]) -> list[str]:
    """A guide's gcloud command that leaves its project to the user's configuration may act on
    another project than the one the commands around it build names from: each names it, with
    --project or in a full resource name (projects/P/...)."""
    problems = []
    for command in commands:
        argv = command.argv
        if argv[0] != "gcloud" or argv[1:2] in PROJECT_FROM_ARGUMENT:
            continue
        if not any(arg.startswith("--project") or "projects/" in arg for arg in argv):
            problems.append(f"{command.where}: names no project: {command.text}")
    return problems


# --- sam deploy's parameters ----------------------------------------------------------------------


class _AnyTagLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form intrinsics (!Ref, !Sub ...) as plain values."""


_AnyTagLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None
    ),
)


def sam_parameter_problems(commands: list[Command]) -> list[str]:
    problems = []
    for command in commands:
        if command.argv[:2] != ("sam", "deploy") or "--parameter-overrides" not in command.argv:
            continue
        argv = list(command.argv)
        given = argv.index("--template-file") + 1 if "--template-file" in argv else 0
        template_path = REPO / (argv[given] if given else "template.yaml")
        text = template_path.read_text(encoding="utf-8")
        template = yaml.load(text, Loader=_AnyTagLoader)  # noqa: S506 (a SafeLoader)
        parameters = template.get("Parameters", {})
        start = argv.index("--parameter-overrides") + 1
        for override in argv[start:]:
            if override.startswith("--"):
                break
            name, _, value = override.partition("=")
            allowed = parameters.get(name, {}).get("AllowedValues")
            if name not in parameters:
                problems.append(f"{command.where}: {template_path.name} has no parameter {name}")
            elif allowed is not None and value not in [str(a) for a in allowed]:
                problems.append(f"{command.where}: {name}={value} is not one of {allowed}")
    return problems


# --- running the CLIs -----------------------------------------------------------------------------


def cli_env(scratch: Path) -> dict[str, str]:
    """No account, no credentials, no configuration: the CLIs stop before any request."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(scratch),
        "LANG": "C.UTF-8",
        "CLOUDSDK_CONFIG": str(scratch / "gcloud"),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "AWS_CONFIG_FILE": str(scratch / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "SAM_CLI_TELEMETRY": "0",
    }


def verdict_of(command: Command, code: int | str, output: str, seconds: float) -> Verdict:
    text = output.strip()
    last = text.splitlines()[-1] if text else f"exit {code}"
    if command.argv[0] == "gcloud":
        # 2: argparse's usage error; "Error parsing [...]": a resource name it cannot complete.
        parsed = code != 2 and "Error parsing [" not in text
        detail = next((line for line in text.splitlines() if "ERROR" in line), last)
    else:
        parsed = "Unable to locate credentials" in text
        detail = next((line for line in text.splitlines() if "rror" in line), last)
    return Verdict(command, parsed, detail, seconds)


def gcloud_python(gcloud: str) -> tuple[str, str]:
    """gcloud's own Python (the bundled one when installed) and the SDK's root directory."""
    root = Path(gcloud).resolve().parent.parent
    bundled = root / "platform" / "bundledpythonunix" / "bin" / "python3"
    python = os.environ.get("CLOUDSDK_PYTHON") or (str(bundled) if bundled.exists() else "python3")
    return python, str(root)


def run_batch(
    python: str, program: str, root: str, commands: list[Command], scratch: Path
) -> list[Verdict]:
    """`commands` through tools/cli_batch.py in one process of the CLI's own Python."""
    if not commands:
        return []
    work = Path(tempfile.mkdtemp(dir=scratch))
    (work / "commands.json").write_text(json.dumps([list(c.argv[1:]) for c in commands]))
    started = time.monotonic()
    done = subprocess.run(
        [python, str(REPO / "tools" / "cli_batch.py"), program, root,
         str(work / "commands.json"), str(work / "results.json")],
        env=cli_env(scratch), cwd=scratch, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{program} batch failed: {done.stderr[-2000:]}")
    seconds = (time.monotonic() - started) / len(commands)
    results = json.loads((work / "results.json").read_text())
    return [
        verdict_of(c, code, out, seconds) for c, (code, out) in zip(commands, results, strict=True)
    ]


def run_one(program: str, command: Command, scratch: Path) -> Verdict:
    """One command in a process of its own (sam: it reads the template from the repository)."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [program, *command.argv[1:]], env=cli_env(scratch), cwd=REPO,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Verdict(command, False, "no answer within 300 s")
    output = done.stdout + done.stderr
    return verdict_of(command, done.returncode, output, time.monotonic() - started)


def check_all(commands: list[Command], tools: Mapping[str, str], scratch: Path) -> list[Verdict]:
    """gcloud in two batches (two cores), the AWS CLI in one, sam one process per command."""
    python, root = gcloud_python(tools["gcloud"])
    aws_python = str(Path(tools["aws"]).parent / "python")
    by_cli = {cli: [c for c in commands if c.argv[0] == cli] for cli in CLIS}
    half = (len(by_cli["gcloud"]) + 1) // 2
    jobs: list[Callable[[], list[Verdict]]] = [
        lambda: run_batch(python, "gcloud", root, by_cli["gcloud"][:half], scratch),
        lambda: run_batch(python, "gcloud", root, by_cli["gcloud"][half:], scratch),
        lambda: run_batch(aws_python, "aws", "-", by_cli["aws"], scratch),
        *[(lambda c=c: [run_one(tools["sam"], c, scratch)]) for c in by_cli["sam"]],
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = [verdict for batch in pool.map(lambda job: job(), jobs) for verdict in batch]
    order = {command.argv: index for index, command in enumerate(commands)}
    return sorted(done, key=lambda verdict: order[verdict.command.argv])


def prepare_scratch(scratch: Path, commands: list[Command]) -> None:
    """The files that `file://` and `fileb://` arguments name, so the AWS CLI can read them."""
    (scratch / "gcloud").mkdir()
    for command in commands:
        names = [
            arg.split(prefix, 1)[1]
            for arg in command.argv
            for prefix in ("fileb://", "file://")
            if prefix in arg
        ]
        if command.argv[:3] == ("aws", "s3", "cp") and "://" not in command.argv[3]:
            names.append(command.argv[3])  # the local file it uploads
        for name in names:
            target = scratch / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.suffix == ".zip":
                with zipfile.ZipFile(target, "w") as archive:
                    archive.writestr("lambda_function.py", "")
            else:
                target.write_text("{}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gcloud", default=shutil.which("gcloud"))
    parser.add_argument("--aws", default=shutil.which("aws"))
    parser.add_argument("--sam", default=shutil.which("sam"))
    parser.add_argument("-v", "--verbose", action="store_true", help="print every command")
    options = parser.parse_args(argv)
    started = time.monotonic()
    tools = {"gcloud": options.gcloud, "aws": options.aws, "sam": options.sam}
    missing = [name for name, path in tools.items() if not path]
    if missing:
        print(f"docs-check: not installed: {', '.join(missing)}", file=sys.stderr)
        return 2

    commands: list[Command] = []
    problems: list[str] = []
    for document in DOCUMENTS:
        found, trouble = markdown_commands(REPO / document)
        commands += found
        problems += trouble
    problems += project_problems(commands)
    commands += python_commands(REPO / "functions" / "dagtrigger")
    built, trouble, runs = cloud_build_runs(REPO / "cloudbuild.yaml")
    commands += built
    problems += trouble + cloud_build_problems(runs) + sam_parameter_problems(commands)

    unique = list({command.argv: command for command in commands}.values())
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        prepare_scratch(scratch, unique)
        verdicts = check_all(unique, tools, scratch)
    for verdict in verdicts:
        if options.verbose or not verdict.ok:
            mark = "ok  " if verdict.ok else "FAIL"
            print(f"{mark} {verdict.seconds:4.1f}s {verdict.command.where}: {verdict.command.text}")
            print(f"       {verdict.detail}")
    failed = [v for v in verdicts if not v.ok]
    for problem in problems:
        print(f"docs-check: {problem}", file=sys.stderr)
    counts = {cli: sum(1 for v in verdicts if v.command.argv[0] == cli) for cli in CLIS}
    summary = ", ".join(f"{count} {cli}" for cli, count in counts.items())
    elapsed = time.monotonic() - started
    if failed or problems:
        print(
            f"docs-check: FAILED: {len(failed)} of {len(verdicts)} commands ({summary}) do not "
            f"parse, {len(problems)} other problems ({elapsed:.1f}s)",
            file=sys.stderr,
        )
        return 1
    print(f"docs-check: {len(verdicts)} commands ({summary}) parse ({elapsed:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
