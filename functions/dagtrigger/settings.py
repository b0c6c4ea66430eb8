"""Configuration from the environment: the public contract of every dagtrigger deployment.

Every check here runs before the first event is handled, and each failure names the variable
and the fix, so that a wrong deployment fails at once instead of losing events one by one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from dagtrigger.errors import ConfigurationError

API_VERSIONS = ("experimental", "v1", "v2")
AUTH_MODES = ("none", "basic", "jwt", "bearer", "google", "iap", "mwaa", "mwaa-web")

_API_SUFFIX = re.compile(r"/(api/(v1|v2|experimental)|auth/token)/?$")
_COMPOSER_ENVIRONMENT = re.compile(r"^projects/[^/]+/locations/[^/]+/environments/[^/]+$")
_COMPOSER_HOST_SUFFIX = ".composer.googleusercontent.com"  # Composer 2/3 web servers
_IAP_HOST_SUFFIX = ".appspot.com"  # Composer 1 web servers, behind IAP


@dataclass(frozen=True)
class Settings:
    """Validated settings.

    `auth` is None when it depends on what the server turns out to be: with a username and
    password, basic on Airflow 1/2 and a JWT on Airflow 3; with COMPOSER_ENVIRONMENT, IAP on
    Composer 1 and Google's bearer token on Composer 2/3.
    """

    airflow_url: str | None
    auth: str | None
    username: str | None
    password: str | None
    token: str | None
    api_version: str | None
    dag_id: str | None
    routes: str | None
    timeout: float
    deadline: float
    routes_ttl: float
    composer_environment: str | None = None
    iap_client_id: str | None = None
    composer_api_endpoint: str = "https://composer.googleapis.com"
    mwaa_environment: str | None = None
    mwaa_airflow_role: str = "Op"  # the Airflow role named in the IAM resource of InvokeRestApi
    max_conf_bytes: int = 64 * 1024
    rate_limit: float | None = None  # requests/s from this process; None: the path's default
    concurrency: int = 10  # requests in flight to Airflow from this process
    secret_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; raises ConfigurationError naming the variable."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        username, password = get("AIRFLOW_USERNAME"), get("AIRFLOW_PASSWORD")
        token = get("AIRFLOW_TOKEN")
        airflow_url = _check_url(get("AIRFLOW_URL"))
        composer_environment = _check_composer_environment(get("COMPOSER_ENVIRONMENT"))
        if airflow_url is not None and composer_environment is not None:
            raise ConfigurationError(
                "Both AIRFLOW_URL and COMPOSER_ENVIRONMENT are set: set only COMPOSER_ENVIRONMENT "
                "(dagtrigger reads the web server URL from the Composer API), or only AIRFLOW_URL."
            )
        iap_client_id = get("IAP_CLIENT_ID")
        mwaa_environment = get("MWAA_ENVIRONMENT")
        if mwaa_environment is not None and (airflow_url or composer_environment):
            raise ConfigurationError(
                "MWAA_ENVIRONMENT is set with AIRFLOW_URL or COMPOSER_ENVIRONMENT: set only "
                "MWAA_ENVIRONMENT (dagtrigger asks MWAA for the web server), or only AIRFLOW_URL."
            )
        secret_arn = get("AIRFLOW_SECRET_ARN")
        settings = cls(
            airflow_url=airflow_url,
            auth=_choose_auth(
                get("AIRFLOW_AUTH"),
                username,
                password,
                token,
                _Target(
                    airflow_url, composer_environment, iap_client_id, mwaa_environment, secret_arn
                ),
            ),
            username=username,
            password=password,
            token=token,
            api_version=_check_choice(
                "AIRFLOW_API_VERSION", get("AIRFLOW_API_VERSION"), API_VERSIONS
            ),
            dag_id=get("DAG_ID"),
            routes=get("DAGTRIGGER_ROUTES"),
            timeout=_positive_seconds("AIRFLOW_TIMEOUT", get("AIRFLOW_TIMEOUT"), 10.0),
            deadline=_positive_seconds("DAGTRIGGER_DEADLINE", get("DAGTRIGGER_DEADLINE"), 30.0),
            routes_ttl=_positive_seconds(
                "DAGTRIGGER_ROUTES_TTL", get("DAGTRIGGER_ROUTES_TTL"), 300.0
            ),
            composer_environment=composer_environment,
            iap_client_id=iap_client_id,
            mwaa_environment=mwaa_environment,
            mwaa_airflow_role=get("MWAA_AIRFLOW_ROLE") or "Op",
            rate_limit=_rate(get("DAGTRIGGER_RATE_LIMIT")),
            concurrency=_positive_int("DAGTRIGGER_CONCURRENCY", get("DAGTRIGGER_CONCURRENCY"), 10),
            max_conf_bytes=_positive_int(
                "DAGTRIGGER_MAX_CONF_BYTES", get("DAGTRIGGER_MAX_CONF_BYTES"), 64 * 1024
            ),
            secret_arn=secret_arn,
            composer_api_endpoint=(
                _check_url(get("COMPOSER_API_ENDPOINT"), "COMPOSER_API_ENDPOINT")
                or "https://composer.googleapis.com"
            ),
        )
        if settings.dag_id is None and settings.routes is None:
            raise ConfigurationError(
                "Neither DAG_ID nor DAGTRIGGER_ROUTES is set: set DAG_ID=<dag id> to trigger one DAG "
                "for every event, or DAGTRIGGER_ROUTES to a JSON list of routing rules "
                "(inline, a file path, gs://… or s3://…)."
            )
        return settings

    def require_airflow_url(self) -> str:
        if self.airflow_url is None:
            raise ConfigurationError(
                "AIRFLOW_URL is not set: set it to the Airflow web server's base URL, "
                "e.g. AIRFLOW_URL=https://airflow.example.com (without /api/v1 or /api/v2), or on "
                "Cloud Composer set COMPOSER_ENVIRONMENT=projects/P/locations/L/environments/E, "
                "or on Amazon MWAA set MWAA_ENVIRONMENT=<environment name>."
            )
        return self.airflow_url

    def password_auth_for(self, api_version: str) -> str:
        """The auth a username and password imply: Airflow 3 (/api/v2) issues JWTs; older use basic."""
        return "jwt" if api_version == "v2" else "basic"


def _check_url(url: str | None, name: str = "AIRFLOW_URL") -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{name}={url!r} is not an http(s) URL: set it to the server's base URL, "
            "e.g. https://airflow.example.com."
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"{name}={url!r} has a query or fragment: set only the base URL, "
            f"e.g. {parts.scheme}://{parts.netloc}{parts.path}."
        )
    suffix = _API_SUFFIX.search(parts.path)
    if suffix:
        base = f"{parts.scheme}://{parts.netloc}{parts.path[: suffix.start()]}"
        raise ConfigurationError(
            f"AIRFLOW_URL={url!r} ends in /{suffix.group(1)}: set the base URL AIRFLOW_URL={base} "
            "(dagtrigger adds the API path itself; AIRFLOW_API_VERSION pins the version)."
        )
    return url.rstrip("/")


@dataclass(frozen=True)
class _Target:
    airflow_url: str | None
    composer_environment: str | None
    iap_client_id: str | None
    mwaa_environment: str | None
    secret_arn: str | None

    def implied_auth(self) -> str | None:
        """The auth the target itself calls for, if it says."""
        if self.mwaa_environment is not None:
            return "mwaa"
        if self.iap_client_id is not None:
            return "iap"
        host = (urlsplit(self.airflow_url).hostname or "") if self.airflow_url else ""
        if host.endswith(_COMPOSER_HOST_SUFFIX):
            return "google"
        if host.endswith(_IAP_HOST_SUFFIX):
            return "iap"
        return None


def _choose_auth(
    mode: str | None,
    username: str | None,
    password: str | None,
    token: str | None,
    target: _Target,
) -> str | None:
    if mode is not None:
        mode = _check_choice("AIRFLOW_AUTH", mode.lower(), AUTH_MODES)
        if mode in ("mwaa", "mwaa-web") and target.mwaa_environment is None:
            raise ConfigurationError(
                f"AIRFLOW_AUTH={mode} needs MWAA_ENVIRONMENT: set it to the environment's name."
            )
        if (
            mode in ("basic", "jwt")
            and target.secret_arn is None
            and (username is None or password is None)
        ):
            raise ConfigurationError(
                f"AIRFLOW_AUTH={mode} needs AIRFLOW_USERNAME and AIRFLOW_PASSWORD: set both."
            )
        if mode == "bearer" and token is None and target.secret_arn is None:
            raise ConfigurationError(
                "AIRFLOW_AUTH=bearer needs AIRFLOW_TOKEN: set it to the token."
            )
        return mode
    if token is not None:
        return "bearer"
    implied = target.implied_auth()
    if implied is not None:
        return implied
    if target.composer_environment is not None:
        return None  # IAP on Composer 1, Google's bearer token on 2 and 3
    if target.secret_arn is not None:
        return None  # decided by what the secret holds
    if (username is None) != (password is None):
        missing = "AIRFLOW_PASSWORD" if password is None else "AIRFLOW_USERNAME"
        raise ConfigurationError(
            f"{missing} is not set but its partner is: set both AIRFLOW_USERNAME and "
            "AIRFLOW_PASSWORD, or neither."
        )
    if username is not None:
        return None  # basic or JWT: decided once the API version is known
    return "none"


def _check_composer_environment(name: str | None) -> str | None:
    if name is not None and not _COMPOSER_ENVIRONMENT.match(name):
        raise ConfigurationError(
            f"COMPOSER_ENVIRONMENT={name!r} is not an environment name: set it to "
            "projects/PROJECT/locations/REGION/environments/NAME (gcloud composer environments "
            "describe NAME --location REGION --format='value(name)')."
        )
    return name


def _check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    if value is not None and value not in choices:
        raise ConfigurationError(
            f"{name}={value!r} is not one of {', '.join(choices)}: set one of those, or unset it."
        )
    return value


def _rate(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0 < rate <= 10_000:
        raise ConfigurationError(
            f"DAGTRIGGER_RATE_LIMIT={value!r} is not a rate between 0 and 10000 requests per "
            "second: e.g. DAGTRIGGER_RATE_LIMIT=10."
        )
    return rate


def _positive_int(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or int(value) == 0:
        raise ConfigurationError(
            f"{name}={value!r} is not a positive whole number: e.g. {name}={default}."
        )
    return int(value)


def _positive_seconds(name: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 3600:
        raise ConfigurationError(
            f"{name}={value!r} is not a number of seconds between 0 and 3600: e.g. {name}={default:g}."
        )
    return seconds
