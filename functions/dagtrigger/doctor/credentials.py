"""Credentials: can the identity the function uses be obtained, before any call to Airflow?

Each path uses the module the function uses: GoogleAdcAuth / IapIdTokenAuth for Google, boto3's
credential chain for AWS, read_airflow_secret for Secrets Manager.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from dagtrigger.auth.airflow_jwt import jwt_expiry
from dagtrigger.doctor.context import Context
from dagtrigger.doctor.model import Outcome, fail, ok, warn
from dagtrigger.settings import AuthMode, Settings

MAX_AIRFLOW_EMAIL = 64  # Airflow's user table holds emails of at most 64 characters


def check_credentials(ctx: Context) -> Outcome:
    settings = ctx.need_settings
    ctx.username = settings.username
    if settings.composer_environment is not None or settings.auth in (
        AuthMode.GOOGLE,
        AuthMode.IAP,
    ):
        return _google(ctx, settings)
    if settings.mwaa_environment is not None or settings.auth == AuthMode.MWAA_SERVERLESS:
        return _aws(ctx)
    if settings.secret_arn is not None:
        return _secret(ctx, settings)
    if settings.auth == AuthMode.BEARER:
        return _bearer(settings.token or "", "AIRFLOW_TOKEN")
    if settings.auth == AuthMode.NONE or settings.username is None:
        return ok("none needed: the server must accept calls without authentication")
    return ok(
        f"Airflow user {settings.username!r} and a password from AIRFLOW_USERNAME and "
        "AIRFLOW_PASSWORD (Airflow checks them below)"
    )


def _google(ctx: Context, settings: Settings) -> Outcome:
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
    except ImportError:
        return fail("google-auth is not installed", "pip install 'dagtrigger[gcp]'")
    from dagtrigger.auth.google_adc import CLOUD_PLATFORM_SCOPE, GoogleAdcAuth
    from dagtrigger.auth.google_common import NO_CREDENTIALS_FIX

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except DefaultCredentialsError as exc:
        return fail(f"no Google Application Default Credentials ({exc})", NO_CREDENTIALS_FIX)
    source = _google_source(credentials, ctx)
    if settings.auth == AuthMode.IAP and settings.composer_environment is None:
        if settings.iap_client_id is None:
            return ok(
                f"Google credentials from {source}; the ID token's audience is the client "
                "id IAP names in its login redirect (read below)"
            )
        from dagtrigger.auth.google_iap import IapIdTokenAuth

        iap = IapIdTokenAuth(settings.airflow_url or "", ctx.session, settings.iap_client_id)
        iap.headers()  # mints the ID token exactly as the function does
        ctx.google_email = _email(iap.description.removesuffix(" (IAP ID token)"))
        return ok(
            f"{_who(ctx)} from {source}: ID token issued for audience "
            f"{settings.iap_client_id} (IAP_CLIENT_ID)"
        )
    adc = GoogleAdcAuth(ctx.session)
    adc.headers()  # an access token, exactly as the function gets one
    ctx.google_email = _email(adc.description)
    email = ctx.google_email
    if email is not None and len(email) > MAX_AIRFLOW_EMAIL:
        return warn(
            f"{email} from {source} is {len(email)} characters long: Airflow cannot register a "
            f"user for an email over {MAX_AIRFLOW_EMAIL}, so Composer refuses it until its user "
            "is pre-registered",
            _preregister_fix(email, settings),
        )
    return ok(f"{_who(ctx)} from {source}: access token issued")


def preregister_fix(ctx: Context) -> str | None:
    """The fix for a service account Airflow cannot register on its own, if that is the case."""
    email = ctx.google_email
    if email is None or len(email) <= MAX_AIRFLOW_EMAIL or ctx.settings is None:
        return None
    return _preregister_fix(email, ctx.settings)


def _preregister_fix(email: str, settings: Settings) -> str:
    project, environment, location = "PROJECT", "ENVIRONMENT", "REGION"
    if settings.composer_environment is not None:
        parts = settings.composer_environment.split("/")
        project, environment, location = parts[1], parts[5], parts[3]
    return (
        f"pre-register its Airflow user with role Op: `gcloud composer environments run "
        f"{environment} --project {project} --location {location} users create -- "
        f"-u accounts.google.com:NUMERIC_ID -e {email} -f dagtrigger -l function -r Op "
        f"--use-random-password` (NUMERIC_ID: `gcloud iam service-accounts describe {email} "
        "--format='value(oauth2ClientId)'`)"
    )


def _google_source(credentials: Any, ctx: Context) -> str:
    kind = f"{type(credentials).__module__}.{type(credentials).__name__}"
    if kind.startswith("google.oauth2.service_account"):
        path = ctx.env.get("GOOGLE_APPLICATION_CREDENTIALS")
        return f"the key file {path}" if path else "a service-account key file"
    if kind.startswith("google.auth.compute_engine"):
        return "the metadata server (the function's service account)"
    if kind.startswith("google.oauth2.credentials"):
        return "`gcloud auth application-default login` (user credentials)"
    if kind.startswith("google.auth.impersonated_credentials"):
        return "service-account impersonation"
    if kind.startswith(("google.auth.identity_pool", "google.auth.external_account")):
        return "workload identity federation"
    return type(credentials).__name__


def _email(description: str) -> str | None:
    prefix = "Google identity "
    return description.removeprefix(prefix) if description.startswith(prefix) else None


def _who(ctx: Context) -> str:
    return f"service account {ctx.google_email}" if ctx.google_email else "Google identity"


def _aws(ctx: Context) -> Outcome:
    try:
        import boto3
    except ImportError:
        return fail("boto3 is not installed", "pip install 'dagtrigger[aws]'")
    session = boto3.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        return fail(
            "no AWS credentials found",
            "run the function with an execution role; elsewhere set AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
    if session.region_name is None:
        return fail(
            "no AWS region", "set AWS_REGION to the MWAA environment's (or workflow's) region"
        )
    source = _AWS_SOURCES.get(credentials.method, credentials.method)
    return ok(f"AWS credentials from {source}, region {session.region_name}")


_AWS_SOURCES = {
    "env": "the environment (AWS_ACCESS_KEY_ID)",
    "shared-credentials-file": "the shared credentials file",
    "config-file": "the AWS config file",
    "assume-role": "an assumed role (AWS config)",
    "iam-role": "the instance's IAM role",
    "container-role": "the task's or function's IAM role",
    "sso": "AWS IAM Identity Center (SSO)",
}


def _secret(ctx: Context, settings: Settings) -> Outcome:
    from dagtrigger.auth.aws_secret import read_airflow_secret

    arn = settings.secret_arn or ""
    credentials = read_airflow_secret(arn)
    if "token" in credentials:
        return _bearer(credentials["token"], f"the token in {arn}")
    ctx.username = credentials["username"]
    return ok(
        f"AIRFLOW_SECRET_ARN is readable and holds Airflow user {ctx.username!r} and a password"
    )


def _bearer(token: str, where: str) -> Outcome:
    expires_at = jwt_expiry(token)
    if expires_at is None:
        return ok(f"{where} is set (not a JWT: its expiry cannot be read)")
    when = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")
    if expires_at <= time.time():
        return fail(
            f"{where} expired at {when}",
            "issue a new token (Airflow 3: POST /auth/token), or set AIRFLOW_USERNAME and "
            "AIRFLOW_PASSWORD instead so dagtrigger renews its token itself",
        )
    return ok(f"{where} is a JWT valid until {when}")
