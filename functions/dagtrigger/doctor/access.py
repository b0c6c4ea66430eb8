"""Authenticated and authorised: a read call, the role where Airflow tells it, a write probe.

Who answers a refusal matters for the fix: Google's front (Composer 2/3) and IAP answer before
Airflow sees the request, MWAA refuses in IAM, Airflow itself refuses by role. Each is told
apart by its answer's shape, and gets its own fix.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from dagtrigger.airflow.api import ApiVersion
from dagtrigger.auth.google_iap import discover_iap_client_id
from dagtrigger.doctor.context import Context
from dagtrigger.doctor.credentials import preregister_fix
from dagtrigger.doctor.model import Outcome, fail, ok, skip, warn
from dagtrigger.errors import DagTriggerError
from dagtrigger.http import Response

PROBE_RUN_ID = "dagtrigger_doctor_write_probe"


def check_authenticated(ctx: Context) -> Outcome:
    """GET /dags: any role that may use the API may read it (Viewer and up)."""
    path = "/test" if ctx.need_client.api_version is ApiVersion.EXPERIMENTAL else "/dags"
    response = ctx.api("GET", path)
    auth = ctx.need_client.transport.auth
    if response.status == 200:
        body = response.json()
        total = body.get("total_entries") if isinstance(body, dict) else None
        visible = f" ({total} visible)" if isinstance(total, int) else ""
        return ok(f"{auth.description} may read DAGs{visible}; {describe_role(ctx)}")
    if response.status in (401, 403):
        return refusal(ctx, response, "read DAGs")
    return fail(
        f"GET {path} answered {response.status}: {response.detail()}",
        "check the web server's logs; dagtrigger api GET /dags repeats the call",
    )


def refusal(ctx: Context, response: Response, action: str) -> Outcome:
    """A 401 or 403, attributed to whoever sent it, with that party's fix."""
    auth = ctx.need_client.transport.auth
    google = _google_error(response)
    if google is not None:
        return _google_refusal(ctx, response.status, google)
    if response.headers.get("X-Goog-IAP-Generated-Response") or "Invalid IAP credentials" in (
        response.detail()
    ):
        return _iap_refusal(ctx, response)
    fix = preregister_fix(ctx) or auth.hint(response.status)
    if response.status == 401:
        return fail(f"{ctx.where} rejected {auth.description} (401: {response.detail()})", fix)
    return fail(
        f"{ctx.where} refused {auth.description} permission to {action} (403: {response.detail()})",
        fix,
    )


def _google_error(response: Response) -> Mapping[str, Any] | None:
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) and "status" in error else None


def _google_refusal(ctx: Context, status: int, error: Mapping[str, Any]) -> Outcome:
    who = ctx.google_email or "the function's service account"
    message = str(error.get("message", ""))
    if status == 401:
        return fail(
            f"Composer's web server rejected the Google token of {who} (401: {message})",
            "use an access token with the cloud-platform scope from the function's service "
            "account (unset AIRFLOW_AUTH, or set AIRFLOW_AUTH=google)",
        )
    fix = preregister_fix(ctx)
    if fix is None:
        project = _project(ctx)
        member = f"serviceAccount:{ctx.google_email}" if ctx.google_email else "MEMBER"
        fix = (
            f"gcloud projects add-iam-policy-binding {project} --member={member} "
            "--role=roles/composer.user"
        )
    return fail(f"Composer's web server refused {who} (403: {message})", fix)


def _iap_refusal(ctx: Context, response: Response) -> Outcome:
    who = ctx.google_email or "the function's service account"
    detail = response.detail()
    if response.status == 401:
        settings = ctx.need_settings
        expected = ctx.iap_client_id_seen
        if expected is None and ctx.base_url is not None:
            try:
                expected = discover_iap_client_id(ctx.base_url, ctx.session)
            except DagTriggerError:
                expected = None
        if expected is not None and expected != settings.iap_client_id:
            return fail(
                f"IAP rejected the ID token: its audience is {settings.iap_client_id} "
                f"(IAP_CLIENT_ID) but IAP expects {expected} ({detail})",
                f"set IAP_CLIENT_ID={expected}, or unset it so dagtrigger reads it from IAP's "
                "login redirect",
            )
        return fail(
            f"IAP rejected the ID token of {who} ({detail})",
            ctx.need_client.transport.auth.hint(401),
        )
    member = f"serviceAccount:{ctx.google_email}" if ctx.google_email else "MEMBER"
    return fail(
        f"IAP refused {who} (403)",
        "grant it access on the one IAP resource in front of Airflow: `gcloud iap web "
        f"add-iam-policy-binding --project={_project(ctx)} --resource-type=backend-services "
        f"--service=BACKEND_SERVICE --member={member} --role=roles/iap.httpsResourceAccessor` "
        "(--resource-type=app-engine for an App Engine app; on Composer 1: `gcloud projects "
        f"add-iam-policy-binding {_project(ctx)} --member={member} --role=roles/composer.user`)",
    )


def _project(ctx: Context) -> str:
    environment = ctx.need_settings.composer_environment
    return environment.split("/")[1] if environment else "PROJECT"


def describe_role(ctx: Context) -> str:
    """The Airflow role of the identity, where the API tells it."""
    settings = ctx.need_settings
    client = ctx.need_client
    if settings.mwaa_environment is not None:
        return f"acts as Airflow role {settings.mwaa_airflow_role} (MWAA_AIRFLOW_ROLE)"
    if client.api_version is ApiVersion.V1 and ctx.username:
        # Airflow 2 (FAB): the user's record lists its roles, readable with can_read on Users.
        try:
            response = ctx.api("GET", f"/users/{ctx.username}")
        except DagTriggerError:
            response = None
        body = response.json() if response is not None else None
        if response is not None and response.status == 200 and isinstance(body, dict):
            roles = [r.get("name") for r in body.get("roles") or [] if isinstance(r, dict)]
            return f"roles: {', '.join(str(r) for r in roles) or 'none'}"
        if response is not None and response.status == 403:
            return "role: not readable (Airflow 2 shows /users/<name> to Admins only)"
    claims = _bearer_claims(client.transport.auth.headers())
    if claims is not None and isinstance(claims.get("role"), str):
        # Airflow 3's simple auth manager signs the user's role into the JWT it issues.
        return f"role: {claims['role']} (in the JWT Airflow issued)"
    return "role: not exposed by the API for this identity"


def _bearer_claims(headers: Mapping[str, str]) -> Mapping[str, Any] | None:
    value = headers.get("Authorization", "")
    if not value.startswith("Bearer "):
        return None
    parts = value.removeprefix("Bearer ").split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def check_may_trigger(ctx: Context, dag_id: str) -> Outcome:
    """POST a run Airflow must refuse, after its permission check and before it creates anything.

    The body names `data_interval_start` without `data_interval_end`. Airflow 2 (connexion)
    validates the body against its OpenAPI schema *before* the permission check, so the body
    is schema-valid; the pair rule lives in DAGRunSchema's @validates_schema, which runs inside
    post_dag_run, after @requires_access_dag("POST", RUN) and the DAG lookup, before
    create_dagrun. Airflow 3 (FastAPI) resolves the route's dependencies, among them
    requires_access_dag(method="POST", access_entity=RUN), before it validates the body, and
    TriggerDAGRunPostBody's model validator rejects the pair with 422. So 403 means the
    permission is missing, and this rejection means it is there; no run is started either way.
    (A no-op PATCH of the DAG would test can_edit on the DAG, not can_create on DAG Runs.)
    """
    if not ctx.write_check:
        return skip("not probed: add --write-check for a permission probe that starts no run")
    client = ctx.need_client
    if client.api_version is ApiVersion.EXPERIMENTAL:
        return skip("not probed: the experimental API has no harmless write to probe with")
    body: dict[str, Any] = {
        "dag_run_id": PROBE_RUN_ID,
        "data_interval_start": "2000-01-01T00:00:00+00:00",
    }
    if client.api_version is ApiVersion.V2:
        body["logical_date"] = None  # required on Airflow 3
    path = ctx.dag_path(dag_id, "/dagRuns")
    response = ctx.api("POST", path, body)
    detail = response.detail(1000)
    who = client.transport.auth.description
    if response.status in (400, 422) and "data_interval" in detail:
        return ok(
            f"{who} may trigger runs (Airflow checked the permission, then refused the "
            "probe's body as intended: no run started)"
        )
    if response.status == 400 and "import errors" in detail:
        return ok(f"{who} may trigger runs (the DAG's import errors are reported above)")
    if response.status in (401, 403):
        return refusal(ctx, response, f"trigger DAG {dag_id}")
    if response.status in (200, 201):
        ctx.api("DELETE", ctx.dag_path(dag_id, f"/dagRuns/{PROBE_RUN_ID}"))
        return fail(
            f"the probe was accepted and started run {PROBE_RUN_ID} (deleted again): this "
            "Airflow does not validate the run body as 2.x and 3.x do",
            "trigger a test run by hand instead: dagtrigger trigger DAG_ID --run-id test-1",
        )
    return warn(
        f"could not tell: the probe got {response.status} ({detail[:200]})",
        f"trigger a test run by hand: dagtrigger trigger {dag_id} --run-id dagtrigger-test-1",
    )
