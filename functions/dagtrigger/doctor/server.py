"""The target: the cloud environment, the web server (DNS, TLS, HTTP) and its REST API version.

The client checked here is `runtime.build_client`'s, on the doctor's own connection pool, so
every later call goes through the transport and auth the function would use.
"""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dagtrigger.airflow.answers import REFUSALS
from dagtrigger.airflow.api import NEWEST_FIRST, ApiVersion
from dagtrigger.airflow.client import AirflowClient
from dagtrigger.doctor.context import Context
from dagtrigger.doctor.model import Outcome, Status, fail, ok, warn
from dagtrigger.errors import DagTriggerError, ErrorKind, TransientTriggerError
from dagtrigger.http import Response
from dagtrigger.runtime import build_client
from dagtrigger.settings import AuthMode

_AIRFLOW_IN_IMAGE = re.compile(r"-airflow-(\d+(?:\.\d+)*)")


def check_environment(ctx: Context) -> Outcome:
    """Composer's or MWAA's description of the environment, then the client built from it."""
    settings = ctx.need_settings
    if settings.composer_environment is not None:
        outcome = _composer(ctx, settings.composer_environment)
    else:
        outcome = _mwaa(ctx, settings.mwaa_environment or "")
    if outcome.status is not Status.FAIL:
        ctx.client = build_client(settings, ctx.session)
    return outcome


def _composer(ctx: Context, name: str) -> Outcome:
    from dagtrigger.auth.google_adc import GoogleAdcAuth
    from dagtrigger.composer import describe_environment

    settings = ctx.need_settings
    try:
        environment = describe_environment(
            name, ctx.session, GoogleAdcAuth(ctx.session), settings.composer_api_endpoint
        )
    except DagTriggerError as exc:
        if exc.kind is not ErrorKind.AUTHORIZATION:
            raise
        project = name.split("/")[1]
        member = f"serviceAccount:{ctx.google_email}" if ctx.google_email else "MEMBER"
        return fail(
            exc.problem,
            f"gcloud projects add-iam-policy-binding {project} --member={member} "
            "--role=roles/composer.user",
        )
    ctx.composer = environment
    airflow = _AIRFLOW_IN_IMAGE.search(environment.image_version)
    ctx.version_source = "from the Composer image"
    return ok(
        f"Composer {environment.composer_major}, Airflow "
        f"{airflow.group(1) if airflow else environment.airflow_major} "
        f"({environment.image_version}), web server {environment.airflow_uri}"
    )


def _mwaa(ctx: Context, name: str) -> Outcome:
    from dagtrigger.airflow.mwaa import read_environment
    from dagtrigger.aws import mwaa_client

    settings = ctx.need_settings
    environment = read_environment(name, mwaa_client(settings.timeout))
    ctx.mwaa = environment
    ctx.version_source = "from MWAA's AirflowVersion"
    status = environment.get("Status", "UNKNOWN")
    via = (
        "web login to the web server"
        if settings.auth == AuthMode.MWAA_WEB
        else f"invoke_rest_api as Airflow role {settings.mwaa_airflow_role} (MWAA_AIRFLOW_ROLE)"
    )
    message = (
        f"Airflow {environment.get('AirflowVersion')}, {status}, web server "
        f"{environment.get('WebserverUrl')} ({environment.get('WebserverAccessMode', 'access mode unknown')}); "
        f"calls go through {via}"
    )
    if status != "AVAILABLE":
        return warn(
            message,
            f"wait until the environment is AVAILABLE (`aws mwaa get-environment --name {name} "
            "--query Environment.Status`)",
        )
    return ok(message)


def check_reachable(ctx: Context) -> Outcome:
    """DNS, then TCP and TLS, then any HTTP answer from the web server, unauthenticated."""
    base_url = ctx.base_url
    if base_url is None:
        return ok(
            "calls go through MWAA's API (invoke_rest_api), which answered above; the web "
            "server itself is not contacted"
        )
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port)})
    except socket.gaierror as exc:
        return fail(f"{host} does not resolve ({exc.strerror})", _unreachable_fix(ctx, base_url))
    try:
        response = ctx.session.request("GET", base_url + "/")
    except TransientTriggerError as exc:
        return fail(_connection_problem(exc, host, port), _unreachable_fix(ctx, base_url))
    security = "TLS verified" if parts.scheme == "https" else "plain HTTP, no TLS"
    front = ""
    location = response.headers.get("Location", "")
    client_ids = parse_qs(urlsplit(location).query).get("client_id")
    if response.status in (301, 302, 303, 307) and client_ids and "google" in location:
        ctx.iap_client_id_seen = client_ids[0]
        front = f"; behind IAP, OAuth client {client_ids[0]}"
    return ok(
        f"{base_url} answered HTTP {response.status} ({', '.join(addresses)}; {security}{front})"
    )


def _connection_problem(exc: TransientTriggerError, host: str, port: int) -> str:
    cause: Any = exc.__cause__
    text = str(getattr(cause, "reason", None) or cause or exc.problem)
    if exc.kind is ErrorKind.TLS_HANDSHAKE:
        return f"the TLS handshake with {host}:{port} failed ({text})"
    if _refused(exc):
        return f"{host}:{port} refused the connection"
    if exc.kind is ErrorKind.TIMEOUT:
        return f"no answer from {host}:{port} (the connection timed out: a firewall or an allow-list drops it)"
    return f"cannot connect to {host}:{port} ({text})"


def _refused(exc: BaseException) -> bool:
    """Whether the error wraps the operating system's refusal of the connection."""
    seen: set[int] = set()
    reason: BaseException | None = exc
    while reason is not None and id(reason) not in seen:
        if isinstance(reason, ConnectionRefusedError):
            return True
        seen.add(id(reason))
        reason = reason.__cause__ or reason.__context__
    return False


def _unreachable_fix(ctx: Context, base_url: str) -> str:
    settings = ctx.need_settings
    if settings.composer_environment is not None:
        _, project, _, location, _, environment = settings.composer_environment.split("/")
        return (
            "let the function reach the web server: on Composer 2/3 allow its egress IP "
            f"(`gcloud composer environments update {environment} --location {location} "
            f"--project {project} --update-web-server-allow-ip "
            "ip_range=EGRESS_IP/32,description=dagtrigger`, which replaces the list: repeat "
            "--update-web-server-allow-ip for every range to keep; a VPC connector with Cloud NAT "
            "on a reserved address gives the function a fixed one), or connect it to the "
            "environment's network for a private web server"
        )
    if ctx.mwaa is not None:
        return (
            "a private MWAA web server (WebserverAccessMode PRIVATE_ONLY) is reachable only from "
            "its VPC: run the function in that VPC (SubnetIds and SecurityGroupIds), or use "
            "AIRFLOW_AUTH=mwaa (invoke_rest_api)"
        )
    return (
        f"check AIRFLOW_URL={base_url} names the web server and that it runs and admits the "
        f"function's network; test from there: curl -sS {base_url}{ApiVersion.V2.probe} "
        f"{base_url}{ApiVersion.V1.probe}"
    )


def check_api_version(ctx: Context) -> Outcome:
    """The version the client will use, confirmed by the server's /version (public on 2 and 3)."""
    settings = ctx.need_settings
    if ctx.client is None:  # self-hosted: build_client may ask the server for its version
        ctx.client = build_client(settings, ctx.session)
    if settings.api_version is not None:
        ctx.version_source = "AIRFLOW_API_VERSION"
    client = ctx.client
    try:
        version = client.api_version
    except DagTriggerError as exc:
        if exc.kind not in REFUSALS:
            raise
        # A front refused even the public version probe: the next check says why. It asks
        # /api/v2, whose answer behind such a front is the front's own refusal.
        ctx.client = AirflowClient(client.transport, api_version=ApiVersion.V2, retry=client.retry)
        return warn(f"not detected, the request was refused: {exc.problem} (see authenticated)")
    prefix, path = version.prefix, version.probe
    try:
        response = _read_version(ctx, path)
    except DagTriggerError as exc:
        if exc.kind not in REFUSALS:
            raise
        return warn(
            f"{prefix} ({ctx.version_source}), not confirmed: {exc.problem} (see authenticated)"
        )
    if response.status in (401, 403):
        return warn(
            f"{prefix} ({ctx.version_source}), not confirmed: GET {path} answered "
            f"{response.status} (see authenticated)"
        )
    if response.status in (404, 405):
        said = f": {response.detail()}" if response.json() is not None else ""
        return _missing_api(ctx, version, path, f"{response.status}{said}")
    if response.status != 200:
        return fail(
            f"GET {path} answered {response.status}: {response.detail()}",
            "check the web server's health and logs, then run dagtrigger doctor again",
        )
    body = response.json()
    airflow = body.get("version") if isinstance(body, dict) else None
    if version is ApiVersion.EXPERIMENTAL:
        return ok(f"{prefix} ({ctx.version_source}): Airflow 1.10's experimental API")
    major = str(airflow or "").split(".")[0]
    expected = {"2": ApiVersion.V1, "3": ApiVersion.V2}.get(major)
    if expected is not None and expected is not version:
        return fail(
            f"Airflow {airflow} serves {expected.prefix}, but the function would call {prefix} "
            f"({ctx.version_source})",
            f"set AIRFLOW_API_VERSION={expected}, or unset it to detect the version",
        )
    return ok(f"Airflow {airflow}, REST API {prefix} ({ctx.version_source})")


def _read_version(ctx: Context, path: str) -> Response:
    """GET the version: /version is public on Airflow 2 and 3, so a direct connection asks
    without credentials first (a broken credential then still shows the version); fronts that
    authenticate every request (Composer, IAP) and invoke_rest_api get the function's."""
    base_url = ctx.base_url
    if base_url is not None:
        response = ctx.session.request("GET", base_url + path)
        if response.status == 200 or response.status in (404, 405):
            return response
    return ctx.need_client.transport.request("GET", path)


def _missing_api(ctx: Context, version: ApiVersion, path: str, answer: str) -> Outcome:
    description = ctx.need_client.transport.description
    available = next(
        (other for other in NEWEST_FIRST if other is not version and _serves(ctx, other)), None
    )
    if available is None:
        return fail(
            f"no Airflow REST API at {description} (GET {path} answered {answer})",
            "set AIRFLOW_URL to the Airflow web server's base URL (without /api/...)",
        )
    return fail(
        f"{description} has no {version.prefix} (GET {path} answered {answer})",
        f"set AIRFLOW_API_VERSION={available}, or unset it to detect the version",
    )


def _serves(ctx: Context, version: ApiVersion) -> bool:
    """Whether the server answers this version's probe (/version, or /test) with 200."""
    try:
        response = _read_version(ctx, version.probe)
    except DagTriggerError:
        return False
    return response.status == 200
