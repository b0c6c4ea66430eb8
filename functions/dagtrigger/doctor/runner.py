"""The order of the checks and what each needs: a check whose prerequisite did not pass is
skipped, naming it, so that one cause shows as one ✘ rather than a cascade.

Every line is redacted as it is added: checks quote answers (Google's error message, an import
error's trace, a param's default) and SDK exceptions, any of which may echo a credential."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dagtrigger.doctor.access import check_authenticated, check_may_trigger
from dagtrigger.doctor.assets import check_asset_exists, check_asset_partitions, check_may_record
from dagtrigger.doctor.config import check_configuration, check_routing, describe_run
from dagtrigger.doctor.context import Context
from dagtrigger.doctor.credentials import check_credentials
from dagtrigger.doctor.dags import (
    check_dag_exists,
    check_dag_params,
    check_dag_parses,
    check_dag_unpaused,
)
from dagtrigger.doctor.model import (
    CheckResult,
    Outcome,
    Status,
    fail,
    ok,
    problem_and_fix,
    skip,
)
from dagtrigger.doctor.report import label
from dagtrigger.doctor.server import check_api_version, check_environment, check_reachable
from dagtrigger.doctor.workflows import (
    check_may_start,
    check_workflow_client,
    check_workflow_exists,
    check_workflow_parameters,
)
from dagtrigger.errors import DagTriggerError
from dagtrigger.http import HttpSession
from dagtrigger.redact import redact
from dagtrigger.settings import AuthMode

_PASSED = (Status.OK, Status.WARN)


class Checklist:
    """Runs checks in order; remembers each status so that later checks can depend on it."""

    def __init__(self) -> None:
        self.results: list[CheckResult] = []
        self._status: dict[str, Status] = {}

    def run(
        self,
        name: str,
        check: Callable[[], Outcome],
        *,
        subject: str | None = None,
        requires: tuple[str, ...] = (),
    ) -> Status:
        unmet = [key for key in requires if not self.passed(key)]
        outcome = skip(f"skipped: needs {_describe(unmet[0])}") if unmet else _guarded(check)
        return self.add(name, outcome, subject)

    def passed(self, key: str) -> bool:
        return self._status.get(key) in _PASSED

    def add(self, name: str, outcome: Outcome, subject: str | None = None) -> Status:
        fix = redact(outcome.fix) if outcome.fix is not None else None
        result = CheckResult(name, subject, outcome.status, redact(outcome.message), fix)
        self.results.append(result)
        self._status[result.key] = outcome.status
        return outcome.status


def _describe(key: str) -> str:
    name, _, subject = key.partition(":")
    return label(name, subject or None)


def _guarded(check: Callable[[], Outcome]) -> Outcome:
    """A check's own failures are findings too: the doctor reports them, it does not crash."""
    try:
        return check()
    except DagTriggerError as exc:
        return fail(*problem_and_fix(exc))
    except Exception as exc:  # an SDK error dagtrigger does not classify: still one ✘ line
        return fail(
            f"unexpected {type(exc).__name__}: {exc}",
            "the function would fail the same way; this is worth a bug report if unclear",
        )


def run_doctor(
    env: Mapping[str, str], *, event: Any = None, write_check: bool = False
) -> list[CheckResult]:
    """Every check, in order, against the configuration in `env`."""
    ctx = Context(env=env, event=event, write_check=write_check)
    checks = Checklist()
    if checks.run("configuration", lambda: check_configuration(ctx)) not in _PASSED:
        return checks.results
    settings = ctx.need_settings
    ctx.session = HttpSession(timeout=settings.timeout)
    checks.run("routing", lambda: check_routing(ctx))
    for run in ctx.plan.runs if ctx.plan else ():
        checks.add("run", ok(describe_run(run.conf, run.dag_run_id)), run.dag_id)
    checks.run("credentials", lambda: check_credentials(ctx))
    if settings.auth == AuthMode.MWAA_SERVERLESS:
        _check_workflows(checks, ctx)
        return checks.results
    target = ("credentials",)
    if settings.composer_environment is not None or settings.mwaa_environment is not None:
        checks.run("environment", lambda: check_environment(ctx), requires=target)
        target = ("environment",)
    checks.run("reachable", lambda: check_reachable(ctx), requires=target)
    checks.run("api_version", lambda: check_api_version(ctx), requires=("reachable",))
    checks.run("authenticated", lambda: check_authenticated(ctx), requires=("api_version",))
    for dag_id in ctx.dag_ids or ((settings.dag_id,) if settings.dag_id else ()):
        _check_dag(checks, ctx, dag_id)
    _check_assets(checks, ctx)
    return checks.results


def _check_assets(checks: Checklist, ctx: Context) -> None:
    """Per asset the routes record events of: it exists, and takes their partition keys; once:
    the identity may record events."""
    if not ctx.assets:
        return
    if not checks.passed("authenticated"):
        for asset in ctx.assets:
            checks.add("asset", skip(f"not checked: needs {label('authenticated')}"), asset)
        return
    for asset in ctx.assets:
        _check_asset(checks, ctx, asset)
    checks.run("asset.record", lambda: check_may_record(ctx))


def _check_asset(checks: Checklist, ctx: Context, asset: str) -> None:
    checks.run("asset.exists", lambda: check_asset_exists(ctx, asset), subject=asset)
    checks.run(
        "asset.partitions",
        lambda: check_asset_partitions(ctx, asset),
        subject=asset,
        requires=(f"asset.exists:{asset}",),
    )


def _check_workflows(checks: Checklist, ctx: Context) -> None:
    """MWAA Serverless has no web server or REST API: the workflows themselves are checked."""
    checks.run("workflow.client", lambda: check_workflow_client(ctx), requires=("credentials",))
    settings = ctx.need_settings
    for workflow in ctx.dag_ids or ((settings.dag_id,) if settings.dag_id else ()):
        _check_workflow(checks, ctx, workflow)


def _check_workflow(checks: Checklist, ctx: Context, workflow: str) -> None:
    def bind(check: Callable[[Context, str], Outcome]) -> Callable[[], Outcome]:
        return lambda: check(ctx, workflow)

    checks.run(
        "workflow.exists",
        bind(check_workflow_exists),
        subject=workflow,
        requires=("workflow.client",),
    )
    exists = (f"workflow.exists:{workflow}",)
    checks.run("workflow.start", bind(check_may_start), subject=workflow, requires=exists)
    checks.run(
        "workflow.params", bind(check_workflow_parameters), subject=workflow, requires=exists
    )


def _check_dag(checks: Checklist, ctx: Context, dag_id: str) -> None:
    """Five checks per DAG; when what they need failed, one skipped line stands for them."""

    def bind(check: Callable[[Context, str], Outcome]) -> Callable[[], Outcome]:
        return lambda: check(ctx, dag_id)

    if not checks.passed("authenticated"):
        checks.add("dag", skip(f"not checked: needs {label('authenticated')}"), dag_id)
        return
    checks.run("dag.exists", bind(check_dag_exists), subject=dag_id)
    checks.run("dag.parses", bind(check_dag_parses), subject=dag_id)
    if not checks.passed(f"dag.exists:{dag_id}"):
        checks.add("dag.rest", skip(f"not checked: needs {label('dag.exists', dag_id)}"), dag_id)
        return
    checks.run("dag.unpaused", bind(check_dag_unpaused), subject=dag_id)
    checks.run("dag.trigger", bind(check_may_trigger), subject=dag_id)
    checks.run("dag.params", bind(check_dag_params), subject=dag_id)
