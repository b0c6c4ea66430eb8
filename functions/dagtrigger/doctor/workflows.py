"""The checks for MWAA Serverless: the client builds, each workflow exists and is ready, the role
may start runs (with --write-check), and the parameters an event gives are ones the workflow
declares, as far as its definition says without starting a run."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dagtrigger.doctor.context import Context
from dagtrigger.doctor.model import Outcome, fail, ok, skip, warn
from dagtrigger.errors import ConfigurationError

# A workflow definition's `params:` block (YAML): the names indented under it.
_PARAMS_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)params:[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+.*\n?)*)", re.M
)
_PARAM_NAME = re.compile(r"^([ \t]+)([A-Za-z_][\w.-]*)[ \t]*:", re.M)


def check_workflow_client(ctx: Context) -> Outcome:
    """The boto3 client the function would build (botocore must know the service)."""
    from dagtrigger.runtime import build_workflow_client

    try:
        ctx.workflows = build_workflow_client(ctx.need_settings)
    except ConfigurationError as exc:
        return fail(exc.problem, exc.fix or "see the README, Amazon MWAA Serverless")
    import botocore

    return ok(f"boto3 client for mwaa-serverless (botocore {botocore.__version__})")


def check_workflow_exists(ctx: Context, workflow: str) -> Outcome:
    """GetWorkflow: the workflow exists here, and is READY (not being deleted)."""
    described = ctx.need_workflows.get_workflow(workflow)
    ctx.workflow_descriptions[workflow] = described
    status = described.get("WorkflowStatus")
    where = f"{described.get('Name', workflow)} ({described.get('WorkflowArn')})"
    if status not in (None, "READY"):
        return fail(
            f"workflow {where} is {status}",
            "a workflow being deleted starts no runs: point MWAA_SERVERLESS_WORKFLOW or the "
            "route at another one",
        )
    return ok(f"workflow {where} is {status or 'there'}, runs as {described.get('RoleArn')}")


def check_may_start(ctx: Context, workflow: str) -> Outcome:
    """With --write-check, StartWorkflowRun for a version that cannot exist: IAM answers first."""
    if not ctx.write_check:
        return skip(
            "not checked: add --write-check to probe StartWorkflowRun with a workflow version "
            "that does not exist (no run)"
        )
    started = ctx.need_workflows.probe_start(workflow)
    if started is not None:
        return warn(
            f"the probe started run {started.get('RunId')}: the service took the unknown "
            "version 'dagtrigger-doctor-no-such-version'",
            "stop it with aws mwaa-serverless stop-workflow-run, and skip --write-check here",
        )
    return ok("the role may call airflow-serverless:StartWorkflowRun on it (probe refused, no run)")


def check_workflow_parameters(ctx: Context, workflow: str) -> Outcome:
    """The event's parameters against the params the definition declares, when it has any."""
    runs = [run for run in (ctx.plan.runs if ctx.plan else ()) if run.dag_id == workflow]
    if not runs:
        return skip("not checked: add --event EVENT.json to check the parameters an event gives")
    parameters: dict[str, Any] = {}
    for run in runs:
        parameters.update(run.conf)
    try:
        json.dumps(parameters, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return fail(f"the parameters cannot be sent as JSON: {exc}", "fix the route's conf")
    declared = declared_params(ctx.workflow_descriptions.get(workflow, {}))
    if declared is None:
        return ok(
            f"parameters {', '.join(sorted(parameters)) or '(none)'}; the definition declares "
            "no params to check them against (the service decides when the run starts)"
        )
    unknown = sorted(set(parameters) - declared)
    if unknown:
        return warn(
            f"the workflow declares params {', '.join(sorted(declared))}, not "
            f"{', '.join(unknown)}: the service may refuse the run (ValidationException)",
            "set the route's conf to the workflow's params, with \"replace_conf\": true",
        )
    return ok(f"parameters {', '.join(sorted(parameters))} are params the workflow declares")


def declared_params(described: Mapping[str, Any]) -> set[str] | None:
    """The names under the first `params:` of the workflow's YAML definition, if it has one."""
    definition = described.get("WorkflowDefinition")
    if not isinstance(definition, str):
        return None
    block = _PARAMS_BLOCK.search(definition)
    if block is None:
        return None
    names = _PARAM_NAME.findall(block["body"])
    if not names:
        return set()
    depth = min(len(indent) for indent, _ in names)
    return {name for indent, name in names if len(indent) == depth}
