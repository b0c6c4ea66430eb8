"""The base URLs a deployment names (AIRFLOW_URL, COMPOSER_API_ENDPOINT), checked at start.

Everything a request could trip over later is refused when settings load, naming the variable
and the fix: credentials in the URL, ports out of range, characters a request line cannot hold,
host names that are not DNS names. A non-ASCII host is kept in the ASCII (punycode) form that
is sent.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit

from dagtrigger.airflow.api import ApiVersion
from dagtrigger.errors import ConfigurationError

_API_SUFFIX = re.compile(
    "/({}|auth/token)/?$".format("|".join(re.escape(v.prefix[1:]) for v in ApiVersion))
)


def check_base_url(url: str | None, name: str = "AIRFLOW_URL") -> str | None:
    """The base URL in the ASCII form sent on the wire (IDN host in punycode, no trailing /).

    Everything a request could trip over later is refused here, naming `name` and the fix;
    a password in the URL is never repeated in a message.
    """
    if url is None:
        return None
    shown = _without_userinfo(url)
    if "@" in url:  # refused before parsing: a password holding / ? or # would split elsewhere
        raise ConfigurationError(
            f"{name}={shown!r} holds credentials (user:password@), which are not sent from a URL",
            fix=f"set {name} without them and {_USERINFO_FIX[name]}.",
        )
    for position, char in enumerate(url, 1):
        if char == " " or not char.isprintable():
            raise ConfigurationError(
                f"{name}={shown!r} has {describe_character(char)} at character {position}, which a URL "
                "cannot hold",
                fix="set it without that character (a space in a path is written %20).",
            )
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # brackets that do not hold an IPv6 address
        raise ConfigurationError(
            f"{name}={shown!r} is not a valid URL ({exc})",
            fix="use brackets only around an IPv6 address, e.g. http://[2001:db8::1]:8080.",
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{name}={shown!r} is not an http(s) URL",
            fix="set it to the server's base URL, e.g. https://airflow.example.com.",
        )
    host, port = _check_authority(parts.netloc, name, shown)
    path = _check_path(parts.path, name, shown)
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    if "?" in url or "#" in url:
        raise ConfigurationError(
            f"{name}={shown!r} has a query or fragment",
            fix=f"set only the base URL, e.g. {origin}{path}.",
        )
    suffix = _API_SUFFIX.search(path)
    if suffix:
        raise ConfigurationError(
            f"{name}={shown!r} ends in /{suffix.group(1)}",
            fix=f"set the base URL "
            f"{name}={origin}{path[: suffix.start()]} "
            "(dagtrigger adds the API path itself; AIRFLOW_API_VERSION pins the version).",
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
                f"{name}={shown!r} has {after!r} after the IPv6 address",
                fix="use [ADDRESS]:PORT, e.g. http://[2001:db8::1]:8080.",
            )
        _check_ipv6(literal, name, shown)
    else:
        host, _, port = netloc.partition(":")
        host = _ascii_host(host, name, shown)
    if port and not (_PORT.fullmatch(port) and 0 < int(port) <= 65535):
        raise ConfigurationError(
            f"{name}={shown!r} has port {port!r}, not a number from 1 to 65535",
            fix=f"use one, e.g. {host}:8080, or none for the scheme's default.",
        )
    return host, str(int(port)) if port else ""


def _check_ipv6(literal: str, name: str, shown: str) -> None:
    try:
        # RFC 6874 writes the % of a zone (fe80::1%eth0) as %25 in a URL
        ipaddress.IPv6Address(literal.replace("%25", "%", 1))
    except ValueError as exc:
        raise ConfigurationError(
            f"{name}={shown!r}: [{literal}] is not an IPv6 address ({exc})",
            fix="use brackets only around one, e.g. http://[2001:db8::1]:8080.",
        ) from exc


def _ascii_host(host: str, name: str, shown: str) -> str:
    """The host name as DNS and the Host header take it: lower case, IDN labels in punycode."""
    if not host:
        raise ConfigurationError(
            f"{name}={shown!r} has no host name",
            fix=f"set the web server's, e.g. {name}=https://airflow.example.com.",
        )
    if not host.isascii():
        host = _idna_host(host, name, shown)
    host = host.lower()
    for label in host.split("."):
        if label.startswith("xn--"):  # already punycode: check it decodes
            _idna_host(label, name, shown)
    if not _ASCII_HOST.fullmatch(host) or len(host.rstrip(".")) > 253:
        raise ConfigurationError(
            f"{name}={shown!r}: {host!r} is not a host name",
            fix="use letters, digits, '-' and '_' in "
            "dot-separated labels of up to 63 characters, e.g. airflow.example.com or 10.0.0.5.",
        )
    last_label = host.rstrip(".").rsplit(".", 1)[-1]
    if last_label.isdigit():  # resolvers read a name ending in a number as an IPv4 address
        try:
            ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise ConfigurationError(
                f"{name}={shown!r}: {host!r} is not an IPv4 address ({exc})",
                fix="check the address, e.g. http://10.0.0.5:8080.",
            ) from exc
    return host


def _idna_host(host: str, name: str, shown: str) -> str:
    import idna  # only for a host name beyond ASCII, or one already in punycode

    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ConfigurationError(
            f"{name}={shown!r}: the host {host!r} is not a valid internationalised domain name "
            f"({exc})",
            fix="check its spelling, or set its ASCII form (xn--…) as your DNS shows it.",
        ) from exc


def _check_path(path: str, name: str, shown: str) -> str:
    """The path with anything beyond ASCII percent-encoded, as a request line needs it."""
    if _BAD_ESCAPE.search(path):
        raise ConfigurationError(
            f"{name}={shown!r} has a '%' not followed by two hex digits in its path",
            fix="use %25 for a literal %.",
        )
    return quote(path, safe=_PATH_SAFE)


def describe_character(char: str) -> str:
    """What a character is, in words, with its code point (never the text around it)."""
    code = ord(char)
    if char in "\r\n":
        kind = "a line break"
    elif char in " \t":
        kind = "a space" if char == " " else "a tab"
    elif 0xD800 <= code <= 0xDFFF:  # how Python holds environment bytes that are not UTF-8
        kind = "a byte that is not UTF-8"
    elif is_control_character(char):
        kind = "a control character"
    elif not char.isprintable():
        kind = "an invisible character"
    else:
        kind = "a character beyond ASCII"
    return f"{kind} (U+{code:04X})"


def is_control_character(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code < 0xA0
