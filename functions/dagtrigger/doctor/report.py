"""The checklist as people read it and as machines read it; no checking happens here."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from dagtrigger.doctor.model import CheckResult, Status

SYMBOLS: Mapping[Status, str] = {
    Status.OK: "✔",
    Status.FAIL: "✘",
    Status.WARN: "!",
    Status.SKIP: "-",
}
ASCII_SYMBOLS: Mapping[Status, str] = {
    Status.OK: "ok",
    Status.FAIL: "FAIL",
    Status.WARN: "warn",
    Status.SKIP: "skip",
}
_LABELS = {
    "configuration": "configuration",
    "routing": "routing",
    "run": "run of {subject}",
    "credentials": "credentials",
    "environment": "environment",
    "reachable": "web server reachable",
    "api_version": "API version",
    "authenticated": "authenticated",
    "dag.exists": "DAG {subject} exists",
    "dag.parses": "DAG {subject} parses",
    "dag.unpaused": "DAG {subject} unpaused",
    "dag.trigger": "may trigger {subject}",
    "dag.params": "DAG {subject} params",
    "dag": "DAG {subject}",
    "dag.rest": "DAG {subject} state, permission and params",
    "asset.exists": "asset {subject} exists",
    "asset.partitions": "asset {subject} partitions",
    "asset.record": "may record asset events",
    "asset": "asset {subject}",
    "workflow.client": "MWAA Serverless client",
    "workflow.exists": "workflow {subject} exists",
    "workflow.start": "may start {subject}",
    "workflow.params": "workflow {subject} parameters",
}


def label(name: str, subject: str | None = None) -> str:
    """How a check is named on its line: "DAG load_sales exists"."""
    return _LABELS.get(name, name).format(subject=subject or "")


def format_checklist(
    results: Sequence[CheckResult], symbols: Mapping[Status, str] = SYMBOLS
) -> str:
    """One line per check, each problem followed by an indented "fix:" line, then a summary."""
    lines: list[str] = []
    for result in results:
        lines.append(
            f"{symbols[result.status]} {label(result.name, result.subject)}: {result.message}"
        )
        if result.fix and result.status in (Status.FAIL, Status.WARN):
            lines.append(f"    fix: {result.fix}")
    lines.append("")
    lines.append(summary(results, symbols))
    return "\n".join(lines)


def summary(results: Sequence[CheckResult], symbols: Mapping[Status, str] = SYMBOLS) -> str:
    failed = sum(1 for r in results if r.status is Status.FAIL)
    warned = sum(1 for r in results if r.status is Status.WARN)
    warnings = f"{warned} warning{'s' if warned != 1 else ''}"
    if failed:
        problems = f"{failed} problem{'s' if failed != 1 else ''}"
        return (
            f"{problems} and {warnings}: the function cannot trigger runs until the "
            f"{symbols[Status.FAIL]} lines are fixed."
        )
    return f"Ready: nothing stops the function from triggering runs ({warnings})."


def format_json(results: Sequence[CheckResult]) -> str:
    """One JSON document: `ok` and every check with its name, subject, status, message and fix."""
    return json.dumps(
        {"ok": exit_code(results) == 0, "checks": [r.as_dict() for r in results]}, indent=2
    )


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 when nothing failed (warnings allowed), else 1."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def can_encode(encoding: str | None) -> bool:
    """Whether a stream in `encoding` can show the checklist's symbols."""
    try:
        "".join(SYMBOLS.values()).encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
