"""Configuration from the environment: the public contract of every dagtrigger deployment.

Every check here runs before the first event is handled, and each failure names the variable
and the fix, so that a wrong deployment fails at once instead of losing events one by one.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from dagtrigger.errors import ConfigurationError

API_VERSIONS = ("experimental", "v1", "v2")
AUTH_MODES = ("none", "basic", "jwt", "bearer", "google", "iap", "mwaa", "mwaa-web")

_API_SUFFIX = re.compile(r"/(api/(v1|v2|experimental)|auth/token)/?$")
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
        iap_client_id = _check_visible_ascii(
            "IAP_CLIENT_ID", get("IAP_CLIENT_ID"), "123-abc.apps.googleusercontent.com"
        )
        mwaa_environment = _check_mwaa_environment(get("MWAA_ENVIRONMENT"))
        if mwaa_environment is not None and (airflow_url or composer_environment):
            raise ConfigurationError(
                "MWAA_ENVIRONMENT is set with AIRFLOW_URL or COMPOSER_ENVIRONMENT: set only "
                "MWAA_ENVIRONMENT (dagtrigger asks MWAA for the web server), or only AIRFLOW_URL."
            )
        secret_arn = get("AIRFLOW_SECRET_ARN")
        auth = _choose_auth(
            get("AIRFLOW_AUTH"),
            username,
            password,
            token,
            _Target(airflow_url, composer_environment, iap_client_id, mwaa_environment, secret_arn),
        )
        api_version = _check_choice("AIRFLOW_API_VERSION", get("AIRFLOW_API_VERSION"), API_VERSIONS)
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
            mwaa_airflow_role=_check_visible_ascii(
                "MWAA_AIRFLOW_ROLE", get("MWAA_AIRFLOW_ROLE"), "Op"
            )
            or "Op",
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
        return _password_auth_for(api_version)


def _password_auth_for(api_version: str) -> str:
    return "jwt" if api_version == "v2" else "basic"


def _check_url(url: str | None, name: str = "AIRFLOW_URL") -> str | None:
    """The base URL in the ASCII form sent on the wire (IDN host in punycode, no trailing /).

    Everything a request could trip over later is refused here, naming `name` and the fix;
    a password in the URL is never repeated in a message.
    """
    if url is None:
        return None
    shown = _without_userinfo(url)
    if "@" in url:  # refused before parsing: a password holding / ? or # would split elsewhere
        raise ConfigurationError(
            f"{name}={shown!r} holds credentials (user:password@), which are not sent from a "
            f"URL: set {name} without them and {_USERINFO_FIX[name]}."
        )
    for position, char in enumerate(url, 1):
        if char == " " or not char.isprintable():
            raise ConfigurationError(
                f"{name}={shown!r} has {_describe(char)} at character {position}, which a URL "
                "cannot hold: set it without that character (a space in a path is written %20)."
            )
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # brackets that do not hold an IPv6 address
        raise ConfigurationError(
            f"{name}={shown!r} is not a valid URL ({exc}): use brackets only around an IPv6 "
            "address, e.g. http://[2001:db8::1]:8080."
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{name}={shown!r} is not an http(s) URL: set it to the server's base URL, "
            "e.g. https://airflow.example.com."
        )
    host, port = _check_authority(parts.netloc, name, shown)
    path = _check_path(parts.path, name, shown)
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    if "?" in url or "#" in url:
        raise ConfigurationError(
            f"{name}={shown!r} has a query or fragment: set only the base URL, e.g. {origin}{path}."
        )
    suffix = _API_SUFFIX.search(path)
    if suffix:
        raise ConfigurationError(
            f"{name}={shown!r} ends in /{suffix.group(1)}: set the base URL "
            f"{name}={origin}{path[: suffix.start()]} "
            "(dagtrigger adds the API path itself; AIRFLOW_API_VERSION pins the version)."
        )
    return f"{origin}{path}".rstrip("/")


_USERINFO_FIX = {
    "AIRFLOW_URL": "put the credentials in AIRFLOW_USERNAME / AIRFLOW_PASSWORD (or AIRFLOW_TOKEN)",
    "COMPOSER_API_ENDPOINT": "let the function's Google credentials authenticate the calls",
}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_PORT = re.compile(r"[0-9]{1,5}")
_ASCII_HOST = re.compile(r"[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*\.?")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_SAFE = "/%:@!$&'()*+,;="  # RFC 3986 path characters quote() would otherwise escape


def _without_userinfo(url: str) -> str:
    """`url` with everything between the scheme and the last @ replaced by ***, to be shown."""
    if "@" not in url:
        return url
    scheme = _SCHEME.match(url)
    return f"{scheme.group(0) if scheme else ''}***@{url.rpartition('@')[2]}"


def _check_authority(netloc: str, name: str, shown: str) -> tuple[str, str]:
    """(host in ASCII, port or ""), from `host[:port]` with no userinfo."""
    if netloc.startswith("["):
        literal, _, after = netloc[1:].partition("]")
        host, port = f"[{literal}]", after[1:]
        if after[:1] not in ("", ":"):
            raise ConfigurationError(
                f"{name}={shown!r} has {after!r} after the IPv6 address: use [ADDRESS]:PORT, "
                "e.g. http://[2001:db8::1]:8080."
            )
        _check_ipv6(literal, name, shown)
    else:
        host, _, port = netloc.partition(":")
        host = _ascii_host(host, name, shown)
    if port and not (_PORT.fullmatch(port) and 0 < int(port) <= 65535):
        raise ConfigurationError(
            f"{name}={shown!r} has port {port!r}, not a number from 1 to 65535: use one, "
            f"e.g. {host}:8080, or none for the scheme's default."
        )
    return host, str(int(port)) if port else ""


def _check_ipv6(literal: str, name: str, shown: str) -> None:
    try:
        # RFC 6874 writes the % of a zone (fe80::1%eth0) as %25 in a URL
        ipaddress.IPv6Address(literal.replace("%25", "%", 1))
    except ValueError as exc:
        raise ConfigurationError(
            f"{name}={shown!r}: [{literal}] is not an IPv6 address ({exc}): use brackets only "
            "around one, e.g. http://[2001:db8::1]:8080."
        ) from exc


def _ascii_host(host: str, name: str, shown: str) -> str:
    """The host name as DNS and the Host header take it: lower case, IDN labels in punycode."""
    if not host:
        raise ConfigurationError(
            f"{name}={shown!r} has no host name: set the web server's, "
            f"e.g. {name}=https://airflow.example.com."
        )
    if not host.isascii():
        host = _idna_host(host, name, shown)
    host = host.lower()
    for label in host.split("."):
        if label.startswith("xn--"):  # already punycode: check it decodes
            _idna_host(label, name, shown)
    if not _ASCII_HOST.fullmatch(host) or len(host.rstrip(".")) > 253:
        raise ConfigurationError(
            f"{name}={shown!r}: {host!r} is not a host name: use letters, digits, '-' and '_' in "
            "dot-separated labels of up to 63 characters, e.g. airflow.example.com or 10.0.0.5."
        )
    last_label = host.rstrip(".").rsplit(".", 1)[-1]
    if last_label.isdigit():  # resolvers read a name ending in a number as an IPv4 address
        try:
            ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise ConfigurationError(
                f"{name}={shown!r}: {host!r} is not an IPv4 address ({exc}): check the "
                "address, e.g. http://10.0.0.5:8080."
            ) from exc
    return host


def _idna_host(host: str, name: str, shown: str) -> str:
    import idna  # only for a host name beyond ASCII, or one already in punycode

    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ConfigurationError(
            f"{name}={shown!r}: the host {host!r} is not a valid internationalised domain name "
            f"({exc}): check its spelling, or set its ASCII form (xn--…) as your DNS shows it."
        ) from exc


def _check_path(path: str, name: str, shown: str) -> str:
    """The path with anything beyond ASCII percent-encoded, as a request line needs it."""
    if _BAD_ESCAPE.search(path):
        raise ConfigurationError(
            f"{name}={shown!r} has a '%' not followed by two hex digits in its path: "
            "use %25 for a literal %."
        )
    return quote(path, safe=_PATH_SAFE)


def _describe(char: str) -> str:
    """What a character is, in words, with its code point (never the text around it)."""
    code = ord(char)
    if char in "\r\n":
        kind = "a line break"
    elif char in " \t":
        kind = "a space" if char == " " else "a tab"
    elif 0xD800 <= code <= 0xDFFF:  # how Python holds environment bytes that are not UTF-8
        kind = "a byte that is not UTF-8"
    elif _is_control(char):
        kind = "a control character"
    elif not char.isprintable():
        kind = "an invisible character"
    else:
        kind = "a character beyond ASCII"
    return f"{kind} (U+{code:04X})"


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


def check_credentials(
    username: str | None,
    password: str | None,
    token: str | None,
    auth: str | None,
    api_version: str | None,
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
    if auth == "bearer" and token is not None:
        _check_header_value(source("AIRFLOW_TOKEN", "token"), token)
    if auth not in (None, "basic", "jwt"):
        return
    may_be_basic = auth != "jwt"
    _check_login_text(source("AIRFLOW_USERNAME", "username"), username, may_be_basic)
    _check_login_text(source("AIRFLOW_PASSWORD", "password"), password, may_be_basic)
    if may_be_basic and username is not None and ":" in username:
        raise ConfigurationError(
            f"{source('AIRFLOW_USERNAME', 'username')} holds ':' (character "
            f"{username.index(':') + 1}), which HTTP basic auth cannot carry in a user name "
            "(RFC 7617): use an Airflow user without ':'"
            + ("." if auth == "basic" else ", or on Airflow 3 set AIRFLOW_AUTH=jwt.")
        )


def _check_login_text(name: str, value: str | None, may_be_basic: bool) -> None:
    """Refuse a username or password that cannot be sent.

    Both go as UTF-8 into base64 (basic) or a JSON body (JWT), which carry any text that is
    UTF-8; RFC 7617 also rules out control characters in basic auth.
    """
    for position, char in enumerate(value or "", 1):
        if 0xD800 <= ord(char) <= 0xDFFF:
            why = "cannot be sent as UTF-8: set it as UTF-8 text"
        elif may_be_basic and _is_control(char):
            why = "HTTP basic auth cannot carry (RFC 7617): set it without control characters"
        else:
            continue
        raise ConfigurationError(
            f"{name} has {_describe(char)} at character {position}, which {why}."
        )


def _check_header_value(name: str, value: str) -> None:
    """Refuse what an HTTP header cannot carry, without showing the value (a secret)."""
    wrong = _first_not_visible_ascii(value)
    if wrong is not None:
        position, char = wrong
        bearer_hint = " and without 'Bearer ', which dagtrigger adds"
        raise ConfigurationError(
            f"{name} has {_describe(char)} at character {position} of {len(value)}, which an "
            "HTTP header cannot carry: set the value alone, exactly as issued (no quotes, spaces "
            f"or line breaks{bearer_hint if value[:7].lower() == 'bearer ' else ''})."
        )


def _check_visible_ascii(name: str, value: str | None, example: str) -> str | None:
    """Refuse an identifier with spaces, control characters or beyond ASCII: none has them."""
    wrong = None if value is None else _first_not_visible_ascii(value)
    if wrong is not None:
        position, char = wrong
        raise ConfigurationError(
            f"{name}={value!r} has {_describe(char)} at character {position}: set it exactly "
            f"as issued, e.g. {name}={example}."
        )
    return value


def _first_not_visible_ascii(value: str) -> tuple[int, str] | None:
    """(position from 1, character) of the first character outside ! to ~, if any."""
    return next(((i, char) for i, char in enumerate(value, 1) if not "!" <= char <= "~"), None)


def _check_mwaa_environment(name: str | None) -> str | None:
    if name is not None and not _MWAA_ENVIRONMENT.fullmatch(name):
        raise ConfigurationError(
            f"MWAA_ENVIRONMENT={name!r} is not an MWAA environment name (a letter, then up to 79 "
            "letters, digits, '-' or '_'): set the name itself, not its ARN or URL, as "
            "`aws mwaa list-environments` shows it."
        )
    return name


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code < 0xA0


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
    # past 4300 digits int() raises; no count or size here needs more than 18
    if not (value.isascii() and value.isdigit()) or len(value) > 18 or int(value) == 0:
        raise ConfigurationError(
            f"{name}={value!r} is not a positive whole number of at most 18 digits: "
            f"e.g. {name}={default}."
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
