"""Credentials out of every message: what dagtrigger quotes from an answer may echo its request.

A server or proxy that echoes the request (a 500 page, a FastAPI 422 quoting its `input`) would
otherwise put the Authorization header, a cookie or a password into retry warnings, errors and
`doctor` lines. Every DagTriggerError message, every quoted answer and every doctor line passes
through `redact`, which removes, in this order:

- the values of credential headers (Authorization, Cookie, Set-Cookie, X-Api-Key, ...), whether
  echoed as raw header lines, as JSON, or as a Python repr of a dict or of (name, value) pairs;
- the values of fields whose name says they hold a secret (password, token, session, csrf, ...),
  as JSON, form, query string or cookie;
- `Bearer`/`Basic` credentials, JWTs, and the password of a URL's user info, wherever they stand;
- every value the process registered with `remember_secret` (passwords, tokens, cookies),
  wherever it stands. This comes last: a password such as "secret" removed first would take the
  field name `client_secret` with it, and the patterns would no longer see that field's value.

Only text an answer or an SDK brought in is at risk, but the patterns leave dagtrigger's own
wording intact: variable names such as AIRFLOW_TOKEN or AIRFLOW_PASSWORD are not fields, and
"token: " in a sentence is not a field either (only a quoted name, or a name followed by `=`, is).
Answers are outside text, so no pattern has nested repetition: each runs in linear time.
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"

# A secret shorter than this is left alone: replacing every "abc" would shred each message, and a
# value that short is guessed in a few thousand tries whatever a message shows.
MIN_SECRET_LENGTH = 4

# An opening or closing quote as echoes write them: JSON, Python repr, JSON inside a JSON string,
# and HTML-escaped in a web page.
_QUOTE = r"""(?:\\?["']|&(?:quot|\#0*34|\#0*39|\#x0*27);)"""
# A header value already redacted is left as it is (a field value cannot start with "[").
_NOT_REDACTED_YET = rf"(?!\s*{re.escape(REDACTED)})"
_HEADERS = (
    r"(?:proxy-)?authorization|(?:set-)?cookie|x-api-key|api-key|x-auth-token|x-(?:csrf|xsrf)-token"
    r"|x-amz-security-token|x-goog-iap-jwt-assertion"
)
# Field names ending in one of these words hold a secret: access_token, client_secret, _token,
# csrf_token, aws_secret_access_key, WebToken... A name is a field only when quoted or followed
# by "=": "AIRFLOW_TOKEN: set it" is a sentence.
_CREDENTIAL_FIELDS = (
    r"(?:[\w-]*[_-])?(?:password|passwd|pwd|secret|token|webtoken|sessiontoken|assertion"
    r"|credential|session|sessionid|csrf|xsrf|api_?key|private_key|secret_access_key)"
)
# A field's value: a JSON string, a repr string, a JSON string inside a JSON string (each may be
# cut short where the answer was truncated), or a bare value (form, query, cookie, number).
_FIELD_VALUE = r"""(?:
      "(?:[^"\\\r\n]|\\.)*(?:"|$)
    | '(?:[^'\\\r\n]|\\.)*(?:'|$)
    | \\"(?:[^"\\\r\n]|\\[^"\r\n])*(?:\\"|$)
    | [^\s"',;&<>\[\]{}\\]+
)"""
# A header's value runs to the end of its line or its closing quote: "Bearer x" is one value.
_HEADER_VALUE = rf"(?:(?!{_QUOTE}|\\[rn])[^\r\n<])+"
# A word boundary on the left that also holds after an escaped line break ("...\r\nCookie: ...").
_FIELD_START = r"(?:(?<![\w-])|(?<=\\[nrt]))"
_LINE_START = r"(?:^|(?<=[>])|(?<=\\[nr]))"

_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE | re.MULTILINE | re.VERBOSE)
    for pattern in (
        # "Authorization": "Bearer x" / 'cookie': 'a=b' / (b'set-cookie', b'a=b') / &quot;...
        rf"(?P<keep>(?P<quote>{_QUOTE})(?:{_HEADERS})(?P=quote)\s*[:=,](?>\s*(?:b?{_QUOTE})?))"
        rf"{_NOT_REDACTED_YET}(?P<secret>{_HEADER_VALUE})",
        # Authorization: Basic x   (a raw header line; "a session cookie: check ..." is none)
        rf"(?P<keep>{_LINE_START}[ \t]*(?:{_HEADERS})[ \t]*:[ \t]*)"
        rf"{_NOT_REDACTED_YET}(?P<secret>{_HEADER_VALUE})",
        # "password": "x" / 'access_token': 'x' / \"WebToken\": \"x\"
        rf"(?P<keep>(?P<quote>{_QUOTE}){_CREDENTIAL_FIELDS}(?P=quote)\s*[:=]\s*)"
        rf"(?P<secret>{_FIELD_VALUE})",
        # password=x&... / session=x; Path=/ / ?access_token=x / Credential=AKID/...
        rf"(?P<keep>{_FIELD_START}{_CREDENTIAL_FIELDS}=)(?P<secret>{_FIELD_VALUE})",
        # Bearer x / Basic x anywhere; a credential has a digit or a symbol, so "Bearer token"
        # and "Basic Authentication" (words of dagtrigger's own messages, and of 401 pages) stay.
        r"(?P<keep>\b(?:bearer|basic)\s+)(?P<secret>(?=[a-z]*[0-9._~+/=-])[\w.~+/-]{8,}=*)",
        # a JWT, or what is left of one when the answer was cut: base64url of a JSON object
        r"(?P<keep>)(?P<secret>\beyJ[\w-]{6,}(?:\.[\w-]*){0,4})",
        # scheme://user:password@host (a scheme name is short: no start rescans a long run)
        r"(?P<keep>\b[a-z][a-z0-9+.-]{0,31}://[^\s/:@'\"<>]+:)(?P<secret>[^\s/@'\"<>]+)(?=@)",
    )
)

_known: set[str] = set()
_known_longest_first: tuple[str, ...] = ()
_lock = threading.Lock()


def remember_secret(value: str | None) -> None:
    """A value this process holds that must never be shown (a password, a token, a cookie).

    It is removed as it is and in the forms a request carries it in (JSON-escaped, URL-encoded).
    Base64 is not guessed here: the paths that send a secret encoded (basic auth) register the
    encoded value, which is what a server echoes.
    """
    global _known_longest_first
    if value is None or len(value) < MIN_SECRET_LENGTH:
        return
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote_plus(value),
        quote(value, safe=""),
    }
    with _lock:
        if forms <= _known:
            return
        _known.update(forms)
        # The longest first: a secret that contains another is removed whole.
        _known_longest_first = tuple(sorted(_known, key=len, reverse=True))


def redact(text: str) -> str:
    """`text` with every credential value replaced by [redacted]."""
    for pattern in _PATTERNS:
        text = pattern.sub(_redact_match, text)
    for secret in _known_longest_first:  # a tuple, replaced whole: safe to read without the lock
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_match(match: re.Match[str]) -> str:
    value = match.group("secret")
    if not any(character.isalnum() for character in value):
        return match.group(0)  # a placeholder ("...", "***") in an example, not a credential
    return match.group("keep") + REDACTED
