"""The DAG: it exists, its file imports, it is not paused, its params accept the planned conf.

Airflow 2 (`/api/v1`) and 3 (`/api/v2`) answer the same paths here with the same keys, except
where noted: `is_active` (2) / `is_stale` (3); import errors name the absolute file on 2 and the
file relative to its bundle on 3; params are `{"value", "schema", ...}` per param on both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from dagtrigger.airflow.api import ApiVersion
from dagtrigger.doctor.access import refusal
from dagtrigger.doctor.context import Context
from dagtrigger.doctor.model import Outcome, fail, ok, warn
from dagtrigger.doctor.params import check_conf

_UNPAUSE = "dagtrigger api PATCH /dags/{dag} --data '{{\"is_paused\": false}}' (or: airflow dags unpause {dag})"


def check_dag_exists(ctx: Context, dag_id: str) -> Outcome:
    if ctx.need_client.api_version is ApiVersion.EXPERIMENTAL:
        response = ctx.api("GET", ctx.dag_path(dag_id, "/dag_runs"))
    else:
        response = ctx.api("GET", ctx.dag_path(dag_id))
    if response.status in (401, 403):
        return refusal(ctx, response, f"read DAG {dag_id}")
    if response.status == 404:
        return fail(
            f"not found at {ctx.where} ({response.detail()})",
            "check the DAG id (DAG_ID or the route's dag_id) against `dagtrigger api GET /dags`; "
            "a DAG appears once its file is in the DAGs folder and imports",
        )
    if response.status != 200:
        return fail(
            f"GET {ctx.dag_path(dag_id)} answered {response.status}: {response.detail()}",
            "check the web server's logs, then run dagtrigger doctor again",
        )
    dag = response.json()
    if not isinstance(dag, dict) or "dag_id" not in dag:
        return ok("exists (the experimental API shows no details)")
    ctx.dags[dag_id] = dag
    where = dag.get("fileloc") or "its file"
    if dag.get("is_active") is False or dag.get("is_stale") is True:
        return fail(
            f"{where} no longer defines it: Airflow keeps the DAG's record but will not run it",
            "put its file back in the DAGs folder, or point DAG_ID elsewhere",
        )
    allowed = dag.get("allowed_run_types")
    if isinstance(allowed, list) and "manual" not in allowed:
        return fail(
            f"it allows only {', '.join(map(str, allowed))} runs; dagtrigger starts manual ones",
            f"add DagRunType.MANUAL to allowed_run_types in {where}",
        )
    return ok(f"defined in {where}")


def check_dag_parses(ctx: Context, dag_id: str) -> Outcome:
    if ctx.need_client.api_version is ApiVersion.EXPERIMENTAL:
        return warn("the experimental API does not expose import errors: check the Airflow UI")
    response = ctx.api("GET", "/importErrors")
    dag = ctx.dags.get(dag_id)
    errors: Sequence[Mapping[str, Any]] = []
    if response.status == 200 and isinstance(body := response.json(), dict):
        errors = [e for e in body.get("import_errors") or [] if isinstance(e, dict)]
    elif dag is None or not dag.get("has_import_errors"):
        return warn(f"import errors not readable by this identity ({response.status})")
    show = "the full trace: dagtrigger api GET /importErrors"
    if dag is not None:
        mine = [e for e in errors if _same_file(e, dag)]
        if mine or dag.get("has_import_errors"):
            where = _file(mine[0]) if mine else dag.get("fileloc")
            error = _last_line(mine[0]) if mine else "see the Airflow UI"
            return fail(
                f"{where} fails to import: {error}; Airflow refuses to trigger the DAG until "
                "it imports again",
                f"fix {where} ({show})",
            )
        return ok(f"{dag.get('fileloc')} imports without errors")
    related = [e for e in errors if _may_define(e, dag_id)]
    if related:
        where = _file(related[0])
        return fail(
            f"{where} fails to import: {_last_line(related[0])}; it may be the file that "
            "defines this DAG",
            f"fix {where} ({show}); the DAG appears once its file imports",
        )
    if errors:
        files = ", ".join(_file(e) for e in errors[:5])
        return warn(
            f"{len(errors)} DAG files fail to import ({files}); if one of them defines "
            "this DAG, fix it",
            f"{show}",
        )
    return ok("no DAG file fails to import")


def _file(error: Mapping[str, Any]) -> str:
    """The file as Airflow names it: absolute on Airflow 2, relative to its bundle on 3."""
    bundle = error.get("bundle_name")
    filename = str(error.get("filename"))
    return f"{filename} (bundle {bundle})" if bundle else filename


def _same_file(error: Mapping[str, Any], dag: Mapping[str, Any]) -> bool:
    filename = str(error.get("filename") or "")
    return bool(filename) and filename in (dag.get("fileloc"), dag.get("relative_fileloc"))


def _may_define(error: Mapping[str, Any], dag_id: str) -> bool:
    filename = str(error.get("filename") or "")
    stem = os.path.splitext(os.path.basename(filename))[0]
    return stem == dag_id or dag_id in str(error.get("stack_trace") or "")


def _last_line(error: Mapping[str, Any]) -> str:
    lines = [line.strip() for line in str(error.get("stack_trace") or "").splitlines()]
    return next((line for line in reversed(lines) if line), "no trace")


def check_dag_unpaused(ctx: Context, dag_id: str) -> Outcome:
    dag = ctx.dags.get(dag_id)
    paused = dag.get("is_paused") if dag is not None else None
    if paused is None:
        response = ctx.api("GET", ctx.dag_path(dag_id, "/paused"))  # the experimental API's
        body = response.json()
        paused = body.get("is_paused") if isinstance(body, dict) else None
        if isinstance(paused, str):
            paused = paused.lower() == "true"
    if paused is None:
        return warn("the API does not say whether it is paused: check the Airflow UI")
    if paused:
        return warn(
            "paused: the runs dagtrigger starts will wait, queued, until it is unpaused",
            _UNPAUSE.format(dag=dag_id),
        )
    return ok("not paused")


def check_dag_params(ctx: Context, dag_id: str) -> Outcome:
    client = ctx.need_client
    if client.api_version is ApiVersion.EXPERIMENTAL:
        return warn("the experimental API does not expose params: the conf cannot be checked")
    response = ctx.api("GET", ctx.dag_path(dag_id, "/details"))
    body = response.json()
    if response.status != 200 or not isinstance(body, dict):
        return warn(
            f"the DAG's details are not readable ({response.status}): the conf cannot be checked"
        )
    params = body.get("params")
    if not isinstance(params, dict):
        return warn("the API does not expose this DAG's params: the conf cannot be checked")
    if not params:
        return ok("declares no params: Airflow accepts any conf")
    runs = [run for run in (ctx.plan.runs if ctx.plan else ()) if run.dag_id == dag_id]
    if not runs:
        return ok(
            f"declares {_describe_params(params)}; add --event EVENT.json to check the conf "
            "an event produces against them"
        )
    unchecked: list[str] = []
    for run in runs:
        verdict = check_conf(
            params, run.conf, lenient_date_time=client.api_version is ApiVersion.V1
        )
        if verdict.problems:
            return fail(
                f"Airflow would refuse the conf of run {run.dag_run_id}: {'; '.join(verdict.problems)}",
                _conf_fix(ctx, run.route, verdict.problems),
            )
        unchecked.extend(verdict.unchecked)
    if unchecked:
        return warn(
            f"the conf fits what could be checked; not checked: {'; '.join(unchecked)}",
            "trigger a test run: dagtrigger send EVENT.json",
        )
    names = ", ".join(params)
    return ok(
        f"the conf of {len(runs)} planned run{'s' if len(runs) != 1 else ''} fits its params ({names})"
    )


def _describe_params(params: Mapping[str, Any]) -> str:
    described = []
    for name, param in params.items():
        value = param.get("value") if isinstance(param, dict) else None
        described.append(
            f"{name} (default {json.dumps(value)})" if value is not None else f"{name} (no default)"
        )
    return f"param{'s' if len(described) != 1 else ''} " + ", ".join(described)


def _conf_fix(ctx: Context, route: str, problems: Sequence[str]) -> str:
    name = problems[0].split(":")[0]
    settings = ctx.need_settings
    if settings.routes is None:
        return (
            f"route events to this DAG with a rule that sets it, e.g. DAGTRIGGER_ROUTES="
            f'\'[{{"dag_id": "...", "conf": {{"{name}": "{{FIELD}}"}}}}]\', or give param '
            f"{name!r} a default that fits its schema"
        )
    return (
        f'make route "{route}" set it: "conf": {{"{name}": "{{FIELD}}"}} (a regex group or an '
        f"event field), or give param {name!r} a default that fits its schema"
    )
