"""Configuration from the environment: the public contract of every dagtrigger deployment.

`SETTINGS_TABLE` names every environment variable a deployment may set, with its kind, default,
bounds and meaning: `Settings.from_env` reads the variables through it, and the README's
configuration table is checked against it.

Every check here runs before the first event is handled, and each failure names the variable
and the fix, so that a wrong deployment fails at once instead of losing events one by one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlsplit

from dagtrigger.airflow.api import ApiVersion
from dagtrigger.airflow.mwaa_serverless import WORKFLOW_ARN, WORKFLOW_NAME, workflow_label
from dagtrigger.base_url import check_base_url, describe_character, is_control_character
from dagtrigger.errors import ConfigurationError


class AuthMode(StrEnum):
    """How dagtrigger authenticates to Airflow, as AIRFLOW_AUTH names it; equal to that text."""

    NONE = "none"
    BASIC = "basic"  # HTTP basic auth, Airflow 1 and 2
    JWT = "jwt"  # a JWT from /auth/token, Airflow 3
    BEARER = "bearer"  # AIRFLOW_TOKEN, issued by something else
    GOOGLE = "google"  # Google's access token: Composer 2 and 3
    IAP = "iap"  # a Google ID token for the IAP in front of Composer 1
    MWAA = "mwaa"  # MWAA's invoke_rest_api, signed with the function's IAM identity
    MWAA_WEB = "mwaa-web"  # MWAA's web login, with a token from the function's IAM identity
    MWAA_SERVERLESS = "mwaa-serverless"  # StartWorkflowRun, as the function's IAM identity


class Kind(StrEnum):
    """What a variable holds; Settings checks the number kinds against their bounds."""

    URL = "url"
    TEXT = "text"
    NAME = "name"  # an identifier, checked against how its issuer writes it
    CREDENTIAL = "credential"  # never shown in a message
    CHOICE = "choice"
    SECONDS = "seconds"
    RATE = "rate"  # requests per second
    COUNT = "count"


@dataclass(frozen=True)
class Bounds:
    """Numbers above `low` and below `high`, or up to it when `high_included`."""

    low: float
    high: float
    high_included: bool = False

    def __contains__(self, number: float) -> bool:
        below_high = number <= self.high if self.high_included else number < self.high
        return self.low < number and below_high  # NaN is in no bounds

    @property
    def digits(self) -> int:
        """How many digits the largest whole number within has."""
        return len(str(int(self.high) - (0 if self.high_included else 1)))


_SECONDS = Bounds(0, 3600)
_COUNT = Bounds(0, 10**18)  # at most 18 digits: no count or size here needs more

_EXPECTED = {
    Kind.SECONDS: "a number of seconds between {low:g} and {high:g}",
    Kind.RATE: "a rate between {low:g} and {high:g} requests per second",
    Kind.COUNT: "a positive whole number of at most {digits} digits",
}


@dataclass(frozen=True)
class Setting:
    """One environment variable of the contract. `default` is written as it would be set."""

    name: str
    kind: Kind
    help: str
    _: KW_ONLY
    default: str | None = None
    bounds: Bounds | None = None
    choices: tuple[str, ...] = ()
    any_case: bool = False  # a choice given in any case, read in lower case
    example: str | None = None  # what messages suggest, when not the default
    read_by: str | None = None  # the module that reads the variable itself, not Settings
    lower_case_too: bool = False  # also read in lower case, which wins (the standard library)

    @property
    def names(self) -> tuple[str, ...]:
        """Every spelling of the variable that is read."""
        return (self.name, self.name.lower()) if self.lower_case_too else (self.name,)

    @property
    def suggestion(self) -> str | None:
        """The value a message about this variable suggests."""
        return self.example or self.default

    @property
    def expected(self) -> str:
        """What a value of a number kind must be, as a refusal says it."""
        bounds = _bounds(self)
        return _EXPECTED[self.kind].format(low=bounds.low, high=bounds.high, digits=bounds.digits)


SETTINGS_TABLE = (
    Setting("AIRFLOW_URL", Kind.URL, "the Airflow web server's base URL, without /api/..."),
    Setting("DAG_ID", Kind.TEXT, "the DAG every event starts, or that of routes naming none"),
    Setting("DAGTRIGGER_ROUTES", Kind.TEXT, "routing rules: JSON, a file, gs://… or s3://…"),
    Setting(
        "COMPOSER_ENVIRONMENT",
        Kind.NAME,
        "instead of AIRFLOW_URL: projects/P/locations/L/environments/E",
    ),
    Setting("MWAA_ENVIRONMENT", Kind.NAME, "instead of AIRFLOW_URL: the MWAA environment's name"),
    Setting(
        "MWAA_SERVERLESS_WORKFLOW",
        Kind.NAME,
        "instead of AIRFLOW_URL and DAG_ID: an MWAA Serverless workflow's ARN or name",
        example="arn:aws:airflow-serverless:REGION:ACCOUNT:workflow/NAME-ID",
    ),
    Setting(
        "AIRFLOW_AUTH",
        Kind.CHOICE,
        "how to authenticate to Airflow; detected when unset",
        choices=tuple(AuthMode),
        any_case=True,
    ),
    Setting(
        "IAP_CLIENT_ID",
        Kind.NAME,
        "the OAuth client id of the IAP in front of the web server",
        example="123-abc.apps.googleusercontent.com",
    ),
    Setting(
        "AIRFLOW_SECRET_ARN",
        Kind.TEXT,
        'a Secrets Manager secret holding {"username", "password"} or {"token"}',
    ),
    Setting(
        "MWAA_AIRFLOW_ROLE",
        Kind.NAME,
        "the Airflow role named in the IAM resource of InvokeRestApi",
        default="Op",
    ),
    Setting("AIRFLOW_USERNAME", Kind.CREDENTIAL, "an Airflow user, with AIRFLOW_PASSWORD"),
    Setting("AIRFLOW_PASSWORD", Kind.CREDENTIAL, "the password of AIRFLOW_USERNAME"),
    Setting("AIRFLOW_TOKEN", Kind.CREDENTIAL, "a bearer token issued by something else"),
    Setting(
        "AIRFLOW_API_VERSION",
        Kind.CHOICE,
        "the REST API version to call; detected once when unset",
        choices=tuple(ApiVersion),
    ),
    Setting(
        "AIRFLOW_TIMEOUT",
        Kind.SECONDS,
        "seconds one HTTP request may take in all",
        default="10",
        bounds=_SECONDS,
    ),
    Setting(
        "DAGTRIGGER_DEADLINE",
        Kind.SECONDS,
        "seconds for everything one run may take, retries included",
        default="30",
        bounds=_SECONDS,
    ),
    Setting(
        "HTTPS_PROXY",
        Kind.URL,
        "the proxy for https:// URLs",
        read_by="dagtrigger.http",
        lower_case_too=True,
    ),
    Setting(
        "HTTP_PROXY",
        Kind.URL,
        "the proxy for http:// URLs",
        read_by="dagtrigger.http",
        lower_case_too=True,
    ),
    Setting(
        "NO_PROXY",
        Kind.TEXT,
        "the hosts that bypass the proxy, comma-separated",
        read_by="dagtrigger.http",
        lower_case_too=True,
    ),
    Setting(
        "DAGTRIGGER_ROUTES_TTL",
        Kind.SECONDS,
        "seconds before routes from a file or URL are read again",
        default="300",
        bounds=_SECONDS,
    ),
    Setting(
        "DAGTRIGGER_RATE_LIMIT",
        Kind.RATE,
        "requests per second to Airflow from this process; unset: the auth path's own",
        bounds=Bounds(0, 10_000, high_included=True),
        example="10",
    ),
    Setting(
        "DAGTRIGGER_CONCURRENCY",
        Kind.COUNT,
        "requests in flight to Airflow from this process",
        default="10",
        bounds=_COUNT,
    ),
    Setting(
        "COMPOSER_API_ENDPOINT",
        Kind.URL,
        "the Composer API's address, for private endpoints",
        default="https://composer.googleapis.com",
    ),
    Setting(
        "DAGTRIGGER_MAX_CONF_BYTES",
        Kind.COUNT,
        "the largest conf a run may get, in bytes of compact JSON",
        default="65536",
        bounds=_COUNT,
    ),
)

_SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS_TABLE}


def _setting(name: str) -> Setting:
    """The table's entry for `name` (a KeyError for any other: Settings reads only these)."""
    return _SETTINGS_BY_NAME[name]


def _default(name: str) -> str:
    default = _setting(name).default
    assert default is not None, f"{name} has no default in SETTINGS_TABLE"
    return default


_COMPOSER_ENVIRONMENT = re.compile(r"^projects/[^/]+/locations/[^/]+/environments/[^/]+$")
_COMPOSER_HOST_SUFFIX = ".composer.googleusercontent.com"  # Composer 2/3 web servers
_IAP_HOST_SUFFIX = ".appspot.com"  # Composer 1 web servers, behind IAP
# EnvironmentName in botocore's mwaa service model: pattern [a-zA-Z][0-9a-zA-Z-_]*, 1 to 80 long
_MWAA_ENVIRONMENT = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,79}")


@dataclass(frozen=True)
class Settings:
    """Validated settings.

    `auth` is None when it depends on what the server turns out to be: with a username and
    password, basic on Airflow 1/2 and a JWT on Airflow 3; with COMPOSER_ENVIRONMENT, IAP on
    Composer 1 and Google's bearer token on Composer 2/3.
    """

    airflow_url: str | None
    auth: AuthMode | None
    username: str | None
    password: str | None
    token: str | None
    api_version: ApiVersion | None
    dag_id: str | None
    routes: str | None
    timeout: float
    deadline: float
    routes_ttl: float
    composer_environment: str | None = None
    iap_client_id: str | None = None
    composer_api_endpoint: str = _default("COMPOSER_API_ENDPOINT")
    mwaa_environment: str | None = None
    mwaa_airflow_role: str = _default("MWAA_AIRFLOW_ROLE")
    max_conf_bytes: int = int(_default("DAGTRIGGER_MAX_CONF_BYTES"))
    rate_limit: float | None = None  # None: the auth path's own
    concurrency: int = int(_default("DAGTRIGGER_CONCURRENCY"))
    secret_arn: str | None = None
    mwaa_serverless_workflow: str | None = None  # an ARN or a name, as set

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; raises ConfigurationError naming the variable."""
        read = _Environment(os.environ if env is None else env)
        username, password = read.given("AIRFLOW_USERNAME"), read.given("AIRFLOW_PASSWORD")
        token = read.given("AIRFLOW_TOKEN")
        airflow_url = check_base_url(read.given("AIRFLOW_URL"))
        composer_environment = _check_composer_environment(read.given("COMPOSER_ENVIRONMENT"))
        if airflow_url is not None and composer_environment is not None:
            raise ConfigurationError(
                "Both AIRFLOW_URL and COMPOSER_ENVIRONMENT are set",
                fix="set only COMPOSER_ENVIRONMENT "
                "(dagtrigger reads the web server URL from the Composer API), or only AIRFLOW_URL.",
            )
        iap_client_id = _check_visible_ascii("IAP_CLIENT_ID", read.given("IAP_CLIENT_ID"))
        mwaa_environment = _check_mwaa_environment(read.given("MWAA_ENVIRONMENT"))
        if mwaa_environment is not None and (airflow_url or composer_environment):
            raise ConfigurationError(
                "MWAA_ENVIRONMENT is set with AIRFLOW_URL or COMPOSER_ENVIRONMENT",
                fix="set only "
                "MWAA_ENVIRONMENT (dagtrigger asks MWAA for the web server), or only AIRFLOW_URL.",
            )
        secret_arn = read.given("AIRFLOW_SECRET_ARN")
        requested_auth = read.choice("AIRFLOW_AUTH", AuthMode)
        workflow = _check_serverless_workflow(
            read.given("MWAA_SERVERLESS_WORKFLOW"),
            requested_auth,
            airflow_url or composer_environment or mwaa_environment,
            read.given("DAG_ID"),
        )
        auth = (
            AuthMode.MWAA_SERVERLESS
            if workflow is not None or requested_auth == AuthMode.MWAA_SERVERLESS
            else _choose_auth(
                requested_auth,
                username,
                password,
                token,
                _Target(
                    airflow_url, composer_environment, iap_client_id, mwaa_environment, secret_arn
                ),
            )
        )
        api_version = read.choice("AIRFLOW_API_VERSION", ApiVersion)
        if auth is not None or (composer_environment is None and secret_arn is None):
            # otherwise these are not sent: Composer decides the auth, or the secret's are sent
            check_credentials(username, password, token, auth, api_version)
        settings = cls(
            airflow_url=airflow_url,
            auth=auth,
            username=username,
            password=password,
            token=token,
            api_version=api_version,
            dag_id=read.given("DAG_ID") or (workflow_label(workflow) if workflow else None),
            routes=read.given("DAGTRIGGER_ROUTES"),
            timeout=read.seconds("AIRFLOW_TIMEOUT"),
            deadline=read.seconds("DAGTRIGGER_DEADLINE"),
            routes_ttl=read.seconds("DAGTRIGGER_ROUTES_TTL"),
            composer_environment=composer_environment,
            iap_client_id=iap_client_id,
            mwaa_environment=mwaa_environment,
            mwaa_airflow_role=(
                _check_visible_ascii("MWAA_AIRFLOW_ROLE", read.given("MWAA_AIRFLOW_ROLE"))
                or _default("MWAA_AIRFLOW_ROLE")
            ),
            rate_limit=read.rate("DAGTRIGGER_RATE_LIMIT"),
            concurrency=read.count("DAGTRIGGER_CONCURRENCY"),
            max_conf_bytes=read.count("DAGTRIGGER_MAX_CONF_BYTES"),
            secret_arn=secret_arn,
            mwaa_serverless_workflow=workflow,
            composer_api_endpoint=(
                check_base_url(read.given("COMPOSER_API_ENDPOINT"), "COMPOSER_API_ENDPOINT")
                or _default("COMPOSER_API_ENDPOINT")
            ),
        )
        if settings.dag_id is None and settings.routes is None:
            raise ConfigurationError(
                "Neither DAG_ID nor DAGTRIGGER_ROUTES is set",
                fix="set DAG_ID=<dag id> to trigger one DAG "
                "for every event, or DAGTRIGGER_ROUTES to a JSON list of routing rules "
                "(inline, a file path, gs://… or s3://…).",
            )
        return settings

    def require_airflow_url(self) -> str:
        if self.airflow_url is None:
            raise ConfigurationError(
                "AIRFLOW_URL is not set",
                fix="set it to the Airflow web server's base URL, "
                "e.g. AIRFLOW_URL=https://airflow.example.com (without /api/v1 or /api/v2), or on "
                "Cloud Composer set COMPOSER_ENVIRONMENT=projects/P/locations/L/environments/E, "
                "or on Amazon MWAA set MWAA_ENVIRONMENT=<environment name>.",
            )
        return self.airflow_url

    def password_auth_for(self, api_version: ApiVersion) -> AuthMode:
        """The auth a username and password imply: Airflow 3 (/api/v2) issues JWTs; older use basic."""
        return _password_auth_for(api_version)


def _password_auth_for(api_version: ApiVersion) -> AuthMode:
    return AuthMode.JWT if api_version == ApiVersion.V2 else AuthMode.BASIC


_Choice = TypeVar("_Choice", bound=StrEnum)


class _Environment:
    """The variables of SETTINGS_TABLE, stripped, a blank one counting as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def given(self, name: str) -> str | None:
        setting = _setting(name)  # refuses a name outside the table
        return self._env.get(setting.name, "").strip() or None

    def choice(self, name: str, of: type[_Choice]) -> _Choice | None:
        setting, value = _setting(name), self.given(name)
        if value is None:
            return None
        if setting.any_case:
            value = value.lower()
        if value not in setting.choices:
            raise ConfigurationError(
                f"{name}={value!r} is not one of {', '.join(setting.choices)}",
                fix="set one of those, or unset it.",
            )
        return of(value)

    def seconds(self, name: str) -> float:
        return _number(_setting(name), self.given(name) or _default(name))

    def rate(self, name: str) -> float | None:
        value = self.given(name)
        return None if value is None else _number(_setting(name), value)

    def count(self, name: str) -> int:
        setting, value = _setting(name), self.given(name) or _default(name)
        bounds = _bounds(setting)
        # the length first: past 4300 digits int() raises
        is_short_number = value.isascii() and value.isdigit() and len(value) <= bounds.digits
        if not (is_short_number and int(value) in bounds):
            raise _refusal(setting, value)
        return int(value)


def _number(setting: Setting, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise _refusal(setting, value) from None
    if number not in _bounds(setting):
        raise _refusal(setting, value)
    return number


def _bounds(setting: Setting) -> Bounds:
    assert setting.bounds is not None, f"{setting.name} is a {setting.kind} without bounds"
    return setting.bounds


def _refusal(setting: Setting, value: str) -> ConfigurationError:
    return ConfigurationError(
        f"{setting.name}={value!r} is not {setting.expected}",
        fix=f"e.g. {setting.name}={setting.suggestion}.",
    )


@dataclass(frozen=True)
class _Target:
    airflow_url: str | None
    composer_environment: str | None
    iap_client_id: str | None
    mwaa_environment: str | None
    secret_arn: str | None

    def implied_auth(self) -> AuthMode | None:
        """The auth the target itself calls for, if it says."""
        if self.mwaa_environment is not None:
            return AuthMode.MWAA
        if self.iap_client_id is not None:
            return AuthMode.IAP
        host = (urlsplit(self.airflow_url).hostname or "") if self.airflow_url else ""
        if host.endswith(_COMPOSER_HOST_SUFFIX):
            return AuthMode.GOOGLE
        if host.endswith(_IAP_HOST_SUFFIX):
            return AuthMode.IAP
        return None


def _choose_auth(
    mode: AuthMode | None,
    username: str | None,
    password: str | None,
    token: str | None,
    target: _Target,
) -> AuthMode | None:
    if mode is not None:
        if mode in (AuthMode.MWAA, AuthMode.MWAA_WEB) and target.mwaa_environment is None:
            raise ConfigurationError(
                f"AIRFLOW_AUTH={mode} needs MWAA_ENVIRONMENT",
                fix="set it to the environment's name.",
            )
        if (
            mode in (AuthMode.BASIC, AuthMode.JWT)
            and target.secret_arn is None
            and (username is None or password is None)
        ):
            raise ConfigurationError(
                f"AIRFLOW_AUTH={mode} needs AIRFLOW_USERNAME and AIRFLOW_PASSWORD", fix="set both."
            )
        if mode == AuthMode.BEARER and token is None and target.secret_arn is None:
            raise ConfigurationError(
                "AIRFLOW_AUTH=bearer needs AIRFLOW_TOKEN", fix="set it to the token."
            )
        return mode
    if token is not None:
        return AuthMode.BEARER
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
            f"{missing} is not set but its partner is",
            fix="set both AIRFLOW_USERNAME and AIRFLOW_PASSWORD, or neither.",
        )
    if username is not None:
        return None  # basic or JWT: decided once the API version is known
    return AuthMode.NONE


def check_credentials(
    username: str | None,
    password: str | None,
    token: str | None,
    auth: AuthMode | None,
    api_version: ApiVersion | None,
    secret_arn: str | None = None,
) -> None:
    """Refuse the credentials `auth` would send but cannot, before the first event needs them.

    `auth` None means basic or a JWT, as `api_version` says (either while it is unknown). The
    credentials come from AIRFLOW_USERNAME / AIRFLOW_PASSWORD / AIRFLOW_TOKEN, or from the
    secret `secret_arn`. Messages name where each came from and which character is wrong,
    never the value.
    """

    def source(variable: str, key: str) -> str:
        return variable if secret_arn is None else f"the {key!r} of AIRFLOW_SECRET_ARN={secret_arn}"

    if auth is None and api_version is not None:
        auth = _password_auth_for(api_version)
    if auth == AuthMode.BEARER and token is not None:
        _check_header_value(source("AIRFLOW_TOKEN", "token"), token)
    if auth not in (None, AuthMode.BASIC, AuthMode.JWT):
        return
    may_be_basic = auth != AuthMode.JWT
    _check_login_text(source("AIRFLOW_USERNAME", "username"), username, may_be_basic)
    _check_login_text(source("AIRFLOW_PASSWORD", "password"), password, may_be_basic)
    if may_be_basic and username is not None and ":" in username:
        raise ConfigurationError(
            f"{source('AIRFLOW_USERNAME', 'username')} holds ':' (character "
            f"{username.index(':') + 1}), which HTTP basic auth cannot carry in a user name "
            "(RFC 7617): use an Airflow user without ':'"
            + ("." if auth == AuthMode.BASIC else ", or on Airflow 3 set AIRFLOW_AUTH=jwt.")
        )


def _check_login_text(name: str, value: str | None, may_be_basic: bool) -> None:
    """Refuse a username or password that cannot be sent.

    Both go as UTF-8 into base64 (basic) or a JSON body (JWT), which carry any text that is
    UTF-8; RFC 7617 also rules out control characters in basic auth.
    """
    for position, char in enumerate(value or "", 1):
        if 0xD800 <= ord(char) <= 0xDFFF:
            why, fix = "cannot be sent as UTF-8", "set it as UTF-8 text."
        elif may_be_basic and is_control_character(char):
            why = "HTTP basic auth cannot carry (RFC 7617)"
            fix = "set it without control characters."
        else:
            continue
        raise ConfigurationError(
            f"{name} has {describe_character(char)} at character {position}, which {why}", fix=fix
        )


def _check_header_value(name: str, value: str) -> None:
    """Refuse what an HTTP header cannot carry, without showing the value (a secret)."""
    wrong = _first_not_visible_ascii(value)
    if wrong is not None:
        position, char = wrong
        bearer_hint = " and without 'Bearer ', which dagtrigger adds"
        raise ConfigurationError(
            f"{name} has {describe_character(char)} at character {position} of {len(value)}, which an "
            "HTTP header cannot carry",
            fix="set the value alone, exactly as issued (no quotes, spaces "
            f"or line breaks{bearer_hint if value[:7].lower() == 'bearer ' else ''}).",
        )


def _check_visible_ascii(name: str, value: str | None) -> str | None:
    """Refuse an identifier with spaces, control characters or beyond ASCII: none has them."""
    wrong = None if value is None else _first_not_visible_ascii(value)
    if wrong is not None:
        position, char = wrong
        raise ConfigurationError(
            f"{name}={value!r} has {describe_character(char)} at character {position}",
            fix=f"set it exactly as issued, e.g. {name}={_setting(name).suggestion}.",
        )
    return value


def _first_not_visible_ascii(value: str) -> tuple[int, str] | None:
    """(position from 1, character) of the first character outside ! to ~, if any."""
    return next(((i, char) for i, char in enumerate(value, 1) if not "!" <= char <= "~"), None)


def _check_mwaa_environment(name: str | None) -> str | None:
    if name is not None and not _MWAA_ENVIRONMENT.fullmatch(name):
        raise ConfigurationError(
            f"MWAA_ENVIRONMENT={name!r} is not an MWAA environment name (a letter, then up to 79 "
            "letters, digits, '-' or '_')",
            fix="set the name itself, not its ARN or URL, as "
            "`aws mwaa list-environments` shows it.",
        )
    return name


def _check_composer_environment(name: str | None) -> str | None:
    if name is not None and not _COMPOSER_ENVIRONMENT.match(name):
        raise ConfigurationError(
            f"COMPOSER_ENVIRONMENT={name!r} is not an environment name",
            fix="set it to "
            "projects/PROJECT/locations/REGION/environments/NAME (`gcloud composer environments "
            "describe NAME --project PROJECT --location REGION --format='value(name)'`).",
        )
    return name


def _check_serverless_workflow(
    workflow: str | None, auth: AuthMode | None, other_target: str | None, dag_id: str | None
) -> str | None:
    """MWAA_SERVERLESS_WORKFLOW, an ARN or a name, chosen alone: it is the target and its DAG."""
    serverless = workflow is not None or auth == AuthMode.MWAA_SERVERLESS
    if not serverless:
        return None
    if auth not in (None, AuthMode.MWAA_SERVERLESS):
        raise ConfigurationError(
            f"MWAA_SERVERLESS_WORKFLOW is set with AIRFLOW_AUTH={auth}",
            fix=f"unset AIRFLOW_AUTH, or set AIRFLOW_AUTH={AuthMode.MWAA_SERVERLESS}: a workflow "
            "run is started with the function's IAM identity.",
        )
    if other_target is not None:
        raise ConfigurationError(
            "MWAA Serverless is chosen (MWAA_SERVERLESS_WORKFLOW or AIRFLOW_AUTH="
            f"{AuthMode.MWAA_SERVERLESS}) with AIRFLOW_URL, COMPOSER_ENVIRONMENT or "
            "MWAA_ENVIRONMENT",
            fix="set only MWAA_SERVERLESS_WORKFLOW: a serverless workflow has no web server or "
            "environment.",
        )
    if workflow is not None and dag_id is not None:
        raise ConfigurationError(
            "Both MWAA_SERVERLESS_WORKFLOW and DAG_ID are set",
            fix="unset DAG_ID: the workflow is what every event (or every route naming no "
            "dag_id) starts.",
        )
    if workflow is not None and not (
        WORKFLOW_ARN.fullmatch(workflow)
        or (len(workflow) <= 255 and WORKFLOW_NAME.fullmatch(workflow))
    ):
        raise ConfigurationError(
            f"MWAA_SERVERLESS_WORKFLOW={workflow!r} is neither a workflow ARN nor a workflow name",
            fix="set the ARN (arn:aws:airflow-serverless:REGION:ACCOUNT:workflow/NAME-ID) or the "
            "name as `aws mwaa-serverless list-workflows` shows them.",
        )
    return workflow
