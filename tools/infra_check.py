"""Static checks of the deployment templates under infra/, offline: `make infra-check`.

1. Every `.tf` file must parse with the HCL2 parser checkov itself uses (the `hcl2` module of
   bc-python-hcl2, Bridgecrew's fork of python-hcl2). Checkov skips a file it cannot parse and
   still exits 0, so a typo would otherwise pass the policy check below unseen.
2. checkov scans infra/ with every framework some subdirectory calls for: `terraform` for `.tf`
   files (infra/gcp), `cloudformation` for CloudFormation and SAM templates (SAM is checked by the
   cloudformation framework), `serverless` for serverless.yml. Any failed check, or any file
   checkov could not parse, fails the run. A check is skipped only in place, next to the resource,
   with `# checkov:skip=CKV_...: reason` (Terraform) or the template's `checkov: skip:` metadata.
3. cfn-lint (installed next to checkov) checks every CloudFormation and SAM template against the
   resource schemas it ships: any error or warning fails the run. A rule is ignored only in
   place, in the resource's `cfn-lint: config: ignore_checks` metadata, with the reason beside it.

4. `terraform fmt -check` on every directory with `.tf` files, when terraform is installed.
   `terraform validate` and `plan` are not run: they need the providers, which `terraform init`
   downloads from the Terraform registry, and nothing is downloaded here.

Nothing is downloaded: `--skip-download` keeps checkov from fetching its guideline mappings from
the Prisma Cloud API, and external Terraform modules are not fetched (checkov's default).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2  # bc-python-hcl2, installed with checkov

REPO = Path(__file__).resolve().parent.parent
INFRA = REPO / "infra"
CHECKOV = Path(sys.executable).with_name("checkov")  # the one in this virtualenv
CFN_LINT = Path(sys.executable).with_name("cfn-lint")  # installed beside it

# Directories that hold generated or downloaded files, never templates of ours.
IGNORED_DIRS = {".terraform", ".build", ".aws-sam", ".serverless", "node_modules", "__pycache__"}
TEMPLATE_SUFFIXES = {".yaml", ".yml", ".json", ".template"}
# Text that makes a YAML/JSON file a CloudFormation or SAM template.
CLOUDFORMATION_MARKERS = (
    "AWSTemplateFormatVersion",
    "AWS::Serverless",
    "Type: AWS::",
    '"Type": "AWS::',
)


def display(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def iter_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if path.is_file() and not any(part in IGNORED_DIRS for part in relative):
            yield path


def frameworks_for(path: Path) -> set[str]:
    """The checkov frameworks that apply to one file."""
    if path.suffix == ".tf":
        return {"terraform"}
    if path.name in ("serverless.yml", "serverless.yaml"):
        return {"serverless"}
    if path.suffix in TEMPLATE_SUFFIXES:
        text = path.read_text(encoding="utf-8", errors="replace")
        if any(marker in text for marker in CLOUDFORMATION_MARKERS):
            return {"cloudformation"}
    return set()


def parse_terraform(files: list[Path]) -> list[str]:
    """One message per `.tf` file that does not parse, naming the file and the parser's error."""
    errors = []
    for path in files:
        try:
            hcl2.loads(path.read_text(encoding="utf-8"))
        except Exception as exc:  # the parser raises lark's many exception types
            detail = " ".join(str(exc).split())
            errors.append(f"{display(path)}: {type(exc).__name__}: {detail}")
    return errors


def run_checkov(root: Path, frameworks: list[str]) -> tuple[int, list[dict[str, Any]]]:
    """Run checkov over `root`: its compact report on the console, and the JSON report parsed."""
    with tempfile.TemporaryDirectory() as out:
        report_file = Path(out) / "checkov.json"
        command = [
            str(CHECKOV),
            "--directory",
            str(root),
            "--framework",
            *frameworks,
            "--quiet",
            "--compact",
            "--skip-download",
            "--output",
            "cli",
            "--output",
            "json",
            "--output-file-path",
            f"console,{report_file}",
        ]
        returncode = subprocess.run(command, cwd=REPO, check=False).returncode
        reports: Any = json.loads(report_file.read_text()) if report_file.exists() else []
    return returncode, reports if isinstance(reports, list) else [reports]


def run_cfn_lint(templates: list[Path]) -> int:
    """cfn-lint on the CloudFormation/SAM templates, its findings on the console; its exit code.

    cfn-lint exits 0 when clean, else a bit mask: 2 errors, 4 warnings (informational findings
    are not reported unless asked for).
    """
    command = [str(CFN_LINT), "--", *(str(path) for path in templates)]
    return subprocess.run(command, cwd=REPO, check=False).returncode


def run_terraform_fmt(directories: list[Path]) -> int | None:
    """`terraform fmt -check -diff` on each directory; None when terraform is not installed."""
    terraform = shutil.which("terraform")
    if terraform is None:
        return None
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}
    worst = 0
    for directory in directories:
        command = [terraform, "fmt", "-check", "-diff", str(directory)]
        worst = max(worst, subprocess.run(command, cwd=REPO, env=env, check=False).returncode)
    return worst


def parsing_errors(reports: list[dict[str, Any]]) -> list[str]:
    """The files checkov skipped because it could not parse them (it names them when it can)."""
    errors: list[str] = []
    for report in reports:
        named = report.get("results", {}).get("parsing_errors", [])
        count = report.get("summary", {}).get("parsing_errors", 0)
        kind = report.get("check_type", "?")
        errors.extend(f"{kind}: {name}" for name in named)
        errors.extend(f"{kind}: a file it does not name" for _ in range(count - len(named)))
    return errors


def main(argv: list[str]) -> int:
    """`python -m tools.infra_check [DIR]`: check DIR (default infra/)."""
    started = time.monotonic()
    root = Path(argv[0]).resolve() if argv else INFRA
    if not root.is_dir():
        print(f"infra-check: {root} does not exist", file=sys.stderr)
        return 2
    by_directory: dict[str, set[str]] = {}
    terraform_files = []
    cloudformation_files = []
    for path in iter_files(root):
        found = frameworks_for(path)
        if found:
            directory = display(path.parent)
            by_directory.setdefault(directory, set()).update(found)
        if path.suffix == ".tf":
            terraform_files.append(path)
        if "cloudformation" in found:
            cloudformation_files.append(path)
    if not by_directory:
        print(f"infra-check: no Terraform, CloudFormation/SAM or Serverless templates in {root}")
        return 1
    for directory, found in sorted(by_directory.items()):
        print(f"infra-check: {directory}: {', '.join(sorted(found))}")

    failures = parse_terraform(terraform_files)
    for failure in failures:
        print(f"infra-check: HCL parse error: {failure}", file=sys.stderr)
    if terraform_files and not failures:
        print(f"infra-check: {len(terraform_files)} .tf files parse")

    if terraform_files:
        directories = sorted({path.parent for path in terraform_files})
        formatted = run_terraform_fmt(directories)
        if formatted is None:
            print("infra-check: terraform is not installed: terraform fmt -check not run")
        elif formatted != 0:
            failures.append("terraform fmt -check: run `terraform fmt` on the files above")
        else:
            print(f"infra-check: terraform fmt -check: {len(directories)} directories formatted")
        print(
            "infra-check: terraform validate and plan not run: they need the providers, which "
            "`terraform init` downloads, and this check is offline"
        )

    frameworks = sorted(set().union(*by_directory.values()))
    returncode, reports = run_checkov(root, frameworks)
    unparsed = parsing_errors(reports)
    for what in unparsed:
        print(f"infra-check: checkov could not parse {what}", file=sys.stderr)
    if returncode != 0:
        failures.append(f"checkov exited {returncode}")
    if not reports:
        failures.append("checkov wrote no report")
    failures.extend(unparsed)

    if cloudformation_files:
        returncode = run_cfn_lint(cloudformation_files)
        if returncode != 0:
            failures.append(f"cfn-lint exited {returncode}")
        else:
            print(f"infra-check: cfn-lint: no findings in {len(cloudformation_files)} template(s)")

    elapsed = time.monotonic() - started
    if failures:
        print(f"infra-check: FAILED ({len(failures)} problems, {elapsed:.1f}s)", file=sys.stderr)
        return 1
    print(f"infra-check: passed ({elapsed:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
