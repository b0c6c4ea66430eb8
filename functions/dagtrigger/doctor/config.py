"""Configuration and routing: what the function will do, decided from the environment alone."""

from __future__ import annotations

import json
from collections.abc import Mapping

from dagtrigger.dispatch import plan_events
from dagtrigger.doctor.context import Context
from dagtrigger.doctor.model import Outcome, fail, ok, problem_and_fix, warn
from dagtrigger.errors import ConfigurationError, EventError
from dagtrigger.events import normalise
from dagtrigger.routes_source import describe_source
from dagtrigger.runtime import build_router
from dagtrigger.settings import AuthMode, Settings

AUTH_LABELS = {
    AuthMode.NONE: "no authentication",
    AuthMode.BASIC: "HTTP basic auth",
    AuthMode.JWT: "a JWT from /auth/token",
    AuthMode.BEARER: "a bearer token",
    AuthMode.GOOGLE: "a Google access token",
    AuthMode.IAP: "a Google ID token for IAP",
    AuthMode.MWAA: "MWAA invoke_rest_api, as the function's IAM identity",
    AuthMode.MWAA_WEB: "MWAA web login, as the function's IAM identity",
    AuthMode.MWAA_SERVERLESS: "MWAA Serverless StartWorkflowRun, as the function's IAM identity",
}


def check_configuration(ctx: Context) -> Outcome:
    """Settings.from_env, exactly as the function reads them; then which auth path and why."""
    try:
        settings = Settings.from_env(ctx.env)
        proxy = describe_proxy(settings, ctx)
    except ConfigurationError as exc:
        return fail(*problem_and_fix(exc))
    ctx.settings = settings
    return ok(
        f"{describe_target(settings)}; auth: {explain_auth(settings, ctx.env)}; "
        f"API version: {explain_api_version(settings)}{proxy}"
    )


def describe_proxy(settings: Settings, ctx: Context) -> str:
    """The proxy the first calls go through, when the environment names one (MWAA's calls go
    through boto3, which reads the same variables itself)."""
    url = settings.airflow_url
    if settings.composer_environment is not None:
        url = settings.composer_api_endpoint
    if url is None:
        return ""
    proxy = ctx.session.proxies.for_url(url)
    return "" if proxy is None else f"; through the proxy {proxy.url} ({proxy.variable})"


def describe_target(settings: Settings) -> str:
    if settings.auth == AuthMode.MWAA_SERVERLESS:
        workflow = settings.mwaa_serverless_workflow
        return "Amazon MWAA Serverless" + (f" workflow {workflow}" if workflow else "")
    if settings.composer_environment is not None:
        return f"Cloud Composer environment {settings.composer_environment}"
    if settings.mwaa_environment is not None:
        return f"Amazon MWAA environment {settings.mwaa_environment}"
    return f"Airflow at {settings.airflow_url}"


def explain_auth(settings: Settings, env: Mapping[str, str]) -> str:
    """The auth path Settings chose, and the variable that made it choose so."""
    mode = settings.auth
    if mode is not None and (env.get("AIRFLOW_AUTH") or "").strip():
        return f"{AUTH_LABELS[mode]} (AIRFLOW_AUTH={mode})"
    if mode == AuthMode.BEARER:
        return f"{AUTH_LABELS[mode]} (AIRFLOW_TOKEN is set)"
    if mode == AuthMode.MWAA_SERVERLESS:
        return f"{AUTH_LABELS[mode]} (MWAA_SERVERLESS_WORKFLOW is set)"
    if mode == AuthMode.MWAA:
        return (
            f"{AUTH_LABELS[mode]} (MWAA_ENVIRONMENT is set; "
            f"AIRFLOW_AUTH={AuthMode.MWAA_WEB} for web login)"
        )
    if mode == AuthMode.IAP:
        why = "IAP_CLIENT_ID is set" if settings.iap_client_id else "the host is *.appspot.com"
        return f"{AUTH_LABELS[mode]} ({why})"
    if mode == AuthMode.GOOGLE:
        return f"{AUTH_LABELS[mode]} (the host is *.composer.googleusercontent.com)"
    if mode == AuthMode.NONE:
        return (
            f"{AUTH_LABELS[mode]} "
            "(no AIRFLOW_USERNAME/AIRFLOW_PASSWORD, AIRFLOW_TOKEN or cloud target)"
        )
    if settings.composer_environment is not None:
        return (
            "by Composer version (COMPOSER_ENVIRONMENT is set): an IAP ID token on Composer 1, "
            "a Google access token on 2 and 3"
        )
    if settings.secret_arn is not None:
        return (
            "by the secret's content (AIRFLOW_SECRET_ARN is set): a token is sent as a bearer "
            "token; a username and password as basic auth on /api/v1, a JWT on /api/v2"
        )
    return (
        f"Airflow user {settings.username!r} (AIRFLOW_USERNAME/AIRFLOW_PASSWORD): "
        "basic auth on /api/v1, a JWT from /auth/token on /api/v2"
    )


def explain_api_version(settings: Settings) -> str:
    if settings.auth == AuthMode.MWAA_SERVERLESS:
        return "none (a workflow run is started with StartWorkflowRun, not Airflow's REST API)"
    if settings.api_version is not None:
        return f"{settings.api_version.prefix} (AIRFLOW_API_VERSION)"
    if settings.composer_environment is not None:
        return "from the environment's Airflow version"
    if settings.mwaa_environment is not None:
        return "from the environment's AirflowVersion"
    return "detected (AIRFLOW_API_VERSION unset)"


def check_routing(ctx: Context) -> Outcome:
    """Which DAGs the routes name; with --event, which rules match it and the runs it starts."""
    settings = ctx.need_settings
    router = build_router(settings)()
    configured = tuple(dict.fromkeys(r.dag_id for r in router.routes if r.dag_id is not None))
    ctx.dag_ids = configured
    rules = [route.asset for route in router.routes if route.asset is not None]
    ctx.assets = tuple(dict.fromkeys(rule.asset for rule in rules))
    ctx.partitioned_assets = frozenset(r.asset for r in rules if r.partition_key is not None)
    source = "DAG_ID" if settings.routes is None else describe_source(settings.routes)
    if ctx.event is None:
        if settings.routes is None:
            return ok(
                f"every event starts DAG {configured[0]} (DAG_ID); add --event EVENT.json "
                "to see the runs an event would start"
            )
        targets = [f"start DAGs {', '.join(configured)}"] if configured else []
        if ctx.assets:
            targets.append(f"record events of assets {', '.join(ctx.assets)}")
        return ok(
            f"{len(router.routes)} rules from {source} {' and '.join(targets)}; "
            "add --event EVENT.json to see the runs an event would start"
        )
    try:
        normalised = normalise(ctx.event)
    except EventError as exc:
        return fail(
            f"the function would reject this event: {exc}",
            "send an event in a shape dagtrigger reads (README: The conf a DAG receives)",
        )
    plan = plan_events(normalised, router, settings.max_conf_bytes)
    ctx.plan = plan
    if plan.runs or plan.asset_events:
        ctx.dag_ids = tuple(dict.fromkeys(run.dag_id for run in plan.runs))
        ctx.assets = tuple(dict.fromkeys(event.asset for event in plan.asset_events))
    if plan.route_errors:
        return fail(*problem_and_fix(plan.route_errors[0]))
    if not plan.runs and not plan.asset_events:
        reasons = "; ".join(plan.ignored) or "nothing to do"
        return warn(
            f"this event would start no run: {reasons}",
            f"if it should, add a rule that matches it to {source}",
        )
    runs = f"{len(plan.runs)} run{'s' if len(plan.runs) != 1 else ''}"
    if settings.routes is None:
        return ok(f"{runs} of DAG {configured[0]} (DAG_ID: every event starts it)")
    routes = ", ".join(
        dict.fromkeys(
            [f"{run.route!r} → {run.dag_id}" for run in plan.runs]
            + [f"{event.route!r} → asset {event.asset}" for event in plan.asset_events]
        )
    )
    events = len(plan.asset_events)
    recorded = f" and {events} asset event{'s' if events != 1 else ''}" if events else ""
    notes = f" ({'; '.join(plan.notes)})" if plan.notes else ""
    return ok(f"{runs}{recorded} from {source}: {routes}{notes}")


def describe_run(conf: Mapping[str, object], run_id: str) -> str:
    return f"run id {run_id}, conf {json.dumps(conf, sort_keys=True)}"
