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
AUTH_MODES = ("none", "basic", "jwt", "bearer")

_API_SUFFIX = re.compile(r"/(api/(v1|v2|experimental)|auth/token)/?$")


@dataclass(frozen=True)
class Settings:
    """Validated settings. `auth` is None when it is to be chosen from the API version."""

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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; raises ConfigurationError naming the variable."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        username, password = get("AIRFLOW_USERNAME"), get("AIRFLOW_PASSWORD")
        token = get("AIRFLOW_TOKEN")
        settings = cls(
            airflow_url=_check_url(get("AIRFLOW_URL")),
            auth=_choose_auth(get("AIRFLOW_AUTH"), username, password, token),
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
                "e.g. AIRFLOW_URL=https://airflow.example.com (without /api/v1 or /api/v2)."
            )
        return self.airflow_url

    def password_auth_for(self, api_version: str) -> str:
        """The auth a username and password imply: Airflow 3 (/api/v2) issues JWTs; older use basic."""
        return "jwt" if api_version == "v2" else "basic"


def _check_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"AIRFLOW_URL={url!r} is not an http(s) URL: set it to the web server's base URL, "
            "e.g. https://airflow.example.com."
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"AIRFLOW_URL={url!r} has a query or fragment: set only the base URL, "
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


def _choose_auth(
    mode: str | None, username: str | None, password: str | None, token: str | None
) -> str | None:
    if mode is not None:
        mode = _check_choice("AIRFLOW_AUTH", mode.lower(), AUTH_MODES)
        if mode in ("basic", "jwt") and (username is None or password is None):
            raise ConfigurationError(
                f"AIRFLOW_AUTH={mode} needs AIRFLOW_USERNAME and AIRFLOW_PASSWORD: set both."
            )
        if mode == "bearer" and token is None:
            raise ConfigurationError(
                "AIRFLOW_AUTH=bearer needs AIRFLOW_TOKEN: set it to the token."
            )
        return mode
    if token is not None:
        return "bearer"
    if (username is None) != (password is None):
        missing = "AIRFLOW_PASSWORD" if password is None else "AIRFLOW_USERNAME"
        raise ConfigurationError(
            f"{missing} is not set but its partner is: set both AIRFLOW_USERNAME and "
            "AIRFLOW_PASSWORD, or neither."
        )
    if username is not None:
        return None  # basic or JWT: decided once the API version is known
    return "none"


def _check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    if value is not None and value not in choices:
        raise ConfigurationError(
            f"{name}={value!r} is not one of {', '.join(choices)}: set one of those, or unset it."
        )
    return value


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
