"""What one check finds: a status, one line, and for a problem the fix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dagtrigger.errors import DagTriggerError


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but not as the user probably expects (a paused DAG queues runs)
    FAIL = "fail"  # the function cannot trigger runs until this is fixed
    SKIP = "skip"  # not checked: a check it needs failed, or it was not asked for


@dataclass(frozen=True)
class Outcome:
    """What a check function returns; the runner adds its name."""

    status: Status
    message: str
    fix: str | None = None


def ok(message: str) -> Outcome:
    return Outcome(Status.OK, message)


def warn(message: str, fix: str | None = None) -> Outcome:
    return Outcome(Status.WARN, message, fix)


def fail(message: str, fix: str) -> Outcome:
    return Outcome(Status.FAIL, message, fix)


def skip(message: str) -> Outcome:
    return Outcome(Status.SKIP, message)


@dataclass(frozen=True)
class CheckResult:
    name: str  # stable, for machines: "reachable", "dag.exists", ...
    subject: str | None  # what it is about, when there are several (a DAG id)
    status: Status
    message: str
    fix: str | None = None

    @property
    def key(self) -> str:
        return self.name if self.subject is None else f"{self.name}:{self.subject}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subject": self.subject,
            "status": str(self.status),
            "message": self.message,
            "fix": self.fix,
        }


def problem_and_fix(error: DagTriggerError) -> tuple[str, str]:
    """What is wrong and what to do about it, as the error carries them; an error that carries
    no fix names what to change in its problem."""
    return error.problem, error.fix or error.problem
