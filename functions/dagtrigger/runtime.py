"""The composition root: settings → router, auth, transport, client, dispatcher.

Nothing is built at import time. Entry points call `get_dispatcher()`, which builds on first use
and keeps the result at module scope, so warm invocations reuse the connection pool and token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from dagtrigger.airflow.client import AirflowClient, RunTarget
from dagtrigger.airflow.retry import RetryPolicy, call_with_retries
from dagtrigger.airflow.throttle import Throttle
from dagtrigger.airflow.transport import HttpTransport, Transport
from dagtrigger.auth import Auth, NoAuth
from dagtrigger.dispatch import Dispatcher
from dagtrigger.errors import ConfigurationError
from dagtrigger.http import HttpSession
from dagtrigger.routes_source import CachedRoutes, describe_source
from dagtrigger.routing import Router
from dagtrigger.settings import AuthMode, Settings, check_credentials

if TYPE_CHECKING:
    from dagtrigger.airflow.mwaa_serverless import WorkflowClient


def build_router(settings: Settings) -> Callable[[], Router]:
    """A callable returning the current Router (routes from a URL are re-read after their TTL)."""
    if settings.routes is None:
        assert settings.dag_id is not None  # Settings.from_env guarantees one of the two
        router = Router.single(settings.dag_id)
        return lambda: router
    spec = settings.routes
    cached = CachedRoutes(
        spec,
        settings.routes_ttl,
        lambda rules: Router.from_rules(
            rules, default_dag_id=settings.dag_id, source=describe_source(spec)
        ),
    )
    return cached.get


def build_client(settings: Settings, session: HttpSession | None = None) -> AirflowClient:
    """The Airflow client for the configured web server, auth path and API version."""
    if settings.auth == AuthMode.MWAA_SERVERLESS:
        raise ConfigurationError(
            "An MWAA Serverless workflow has no Airflow REST API to call",
            fix="use `dagtrigger send`, `trigger` or `doctor`; `api` needs an Airflow "
            "(AIRFLOW_URL, COMPOSER_ENVIRONMENT or MWAA_ENVIRONMENT).",
        )
    session = session or HttpSession(timeout=settings.timeout)
    retry = RetryPolicy(deadline=settings.deadline)
    if settings.composer_environment is not None:
        return _build_composer_client(settings, session, retry)
    if settings.mwaa_environment is not None:
        return _build_mwaa_client(settings, session, retry)
    if settings.secret_arn is not None:
        settings = _with_secret_credentials(settings)
    base_url = settings.require_airflow_url()
    api_version = settings.api_version
    mode = settings.auth
    if mode is None:  # username and password: basic on Airflow 1/2, a JWT on Airflow 3
        if api_version is None:
            probe: Transport = HttpTransport(base_url, NoAuth(), session)
            api_version = AirflowClient(probe, retry=retry).api_version
        mode = settings.password_auth_for(api_version)
    transport = HttpTransport(base_url, build_auth(mode, settings, session, base_url), session)
    return AirflowClient(
        transport, api_version=api_version, retry=retry, throttle=_throttle(settings, None)
    )


def build_target(settings: Settings, session: HttpSession | None = None) -> RunTarget:
    """What starts the runs: MWAA Serverless's StartWorkflowRun, or an Airflow's REST API."""
    if settings.auth == AuthMode.MWAA_SERVERLESS:
        return build_workflow_client(settings)
    return build_client(settings, session)


def build_workflow_client(settings: Settings) -> WorkflowClient:
    from dagtrigger.airflow.mwaa_serverless import WorkflowClient, serverless_client

    return WorkflowClient(
        serverless_client(settings.timeout),
        settings.mwaa_serverless_workflow,
        retry=RetryPolicy(deadline=settings.deadline),
        throttle=_throttle(settings, None),
    )


def _build_composer_client(
    settings: Settings, session: HttpSession, retry: RetryPolicy
) -> AirflowClient:
    from dagtrigger.auth.google_adc import GoogleAdcAuth
    from dagtrigger.composer import describe_environment

    name = _need(settings.composer_environment)
    google = GoogleAdcAuth(session)
    environment = call_with_retries(
        lambda: describe_environment(name, session, google, settings.composer_api_endpoint),
        retry,
        what=f"reading Composer environment {name}",
    )
    mode = settings.auth or AuthMode(environment.auth)
    # Composer 2/3 take the same access token the Composer API did: one token for both.
    auth = (
        google
        if mode == AuthMode.GOOGLE
        else build_auth(mode, settings, session, environment.airflow_uri)
    )
    transport = HttpTransport(
        environment.airflow_uri, auth, session, unreachable_hint=_COMPOSER_UNREACHABLE
    )
    api_version = settings.api_version or environment.api_version
    return AirflowClient(
        transport, api_version=api_version, retry=retry, throttle=_throttle(settings, None)
    )


def _build_mwaa_client(
    settings: Settings, session: HttpSession, retry: RetryPolicy
) -> AirflowClient:
    from dagtrigger.airflow.mwaa import (
        DEFAULT_RATE_LIMIT,
        MwaaIamAuth,
        MwaaTransport,
        api_version_of,
        read_environment,
    )
    from dagtrigger.aws import mwaa_client

    name = _need(settings.mwaa_environment)
    client = mwaa_client(settings.timeout)
    environment = call_with_retries(
        lambda: read_environment(name, client), retry, what=f"reading MWAA environment {name}"
    )
    api_version = settings.api_version or api_version_of(environment)
    # arn:aws:airflow:REGION:ACCOUNT:environment/NAME
    _, _, _, region, account, _ = str(
        environment.get("Arn", "arn:aws:airflow:REGION:ACCOUNT:")
    ).split(":", 5)
    iam = MwaaIamAuth(name, region, account, settings.mwaa_airflow_role)
    transport: Transport
    if settings.auth == AuthMode.MWAA_WEB:
        from dagtrigger.auth.mwaa_web import MwaaWebLoginAuth

        web_login = MwaaWebLoginAuth(name, client, session, api_version, iam.role_arn)
        transport = HttpTransport(
            f"https://{environment['WebserverUrl']}",
            web_login,
            session,
            unreachable_hint=_MWAA_UNREACHABLE,
        )
    else:
        transport = MwaaTransport(name, client, iam)
    default_rate = None if settings.auth == AuthMode.MWAA_WEB else DEFAULT_RATE_LIMIT
    return AirflowClient(
        transport, api_version=api_version, retry=retry, throttle=_throttle(settings, default_rate)
    )


def _throttle(settings: Settings, default_rate: float | None) -> Throttle:
    return Throttle(settings.rate_limit or default_rate, settings.concurrency)


def _with_secret_credentials(settings: Settings) -> Settings:
    from dagtrigger.auth.aws_secret import read_airflow_secret

    arn = _need(settings.secret_arn)
    credentials = read_airflow_secret(arn)
    username, password = credentials.get("username"), credentials.get("password")
    token = credentials.get("token")
    auth = settings.auth or (AuthMode.BEARER if token else None)
    has_password = username is not None and password is not None
    if (auth == AuthMode.BEARER and token is None) or (
        auth in (None, AuthMode.BASIC, AuthMode.JWT) and not has_password
    ):
        needed = '{"token"}' if auth == AuthMode.BEARER else '{"username", "password"}'
        raise ConfigurationError(
            f"The secret AIRFLOW_SECRET_ARN={arn} holds no {needed}, which "
            f"{f'AIRFLOW_AUTH={auth}' if auth else 'a username and password login'} needs",
            fix="store them in the secret, or set AIRFLOW_AUTH to match what it holds.",
        )
    check_credentials(username, password, token, auth, settings.api_version, secret_arn=arn)
    return replace(settings, username=username, password=password, token=token, auth=auth)


_MWAA_UNREACHABLE = (
    "A private MWAA web server (WebserverAccessMode PRIVATE_ONLY) is reachable only from its "
    "VPC: run the function in that VPC, or use AIRFLOW_AUTH=mwaa (invoke_rest_api)."
)

_COMPOSER_UNREACHABLE = (
    "If the environment restricts web server access (Composer 2/3 web server access control, "
    "or a private web server), allow the function's egress IP (a VPC connector with Cloud NAT "
    "on a reserved address) or connect it to the environment's network."
)


def build_auth(mode: AuthMode, settings: Settings, session: HttpSession, base_url: str) -> Auth:
    """One auth path per mode; each module is imported only when its mode is used."""
    if mode == AuthMode.BASIC:
        from dagtrigger.auth.basic import BasicAuth

        return BasicAuth(_need(settings.username), _need(settings.password))
    if mode == AuthMode.JWT:
        from dagtrigger.auth.airflow_jwt import AirflowJwtAuth

        return AirflowJwtAuth(base_url, _need(settings.username), _need(settings.password), session)
    if mode == AuthMode.BEARER:
        from dagtrigger.auth.bearer import StaticBearerAuth

        return StaticBearerAuth(_need(settings.token))
    if mode == AuthMode.GOOGLE:
        from dagtrigger.auth.google_adc import GoogleAdcAuth

        return GoogleAdcAuth(session)
    if mode == AuthMode.IAP:
        from dagtrigger.auth.google_iap import IapIdTokenAuth

        return IapIdTokenAuth(base_url, session, settings.iap_client_id)
    return NoAuth()


def build_dispatcher(settings: Settings) -> Dispatcher:
    client: RunTarget | None = None
    lock = threading.Lock()

    def get_client() -> RunTarget:
        nonlocal client
        with lock:
            if client is None:
                client = build_target(settings)
            return client

    return Dispatcher(build_router(settings), get_client, settings.max_conf_bytes)


_dispatcher: Dispatcher | None = None
_dispatcher_lock = threading.Lock()


def get_dispatcher(env: Mapping[str, str] | None = None) -> Dispatcher:
    """The process-wide dispatcher, built from the environment on first use."""
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None:
            _dispatcher = build_dispatcher(Settings.from_env(env))
        return _dispatcher


def reset() -> None:
    """Forget the process-wide dispatcher (after the environment changed, e.g. in tests)."""
    global _dispatcher
    with _dispatcher_lock:
        _dispatcher = None


def _need(value: str | None) -> str:
    assert value is not None  # Settings validated the pairing before any auth is built
    return value
