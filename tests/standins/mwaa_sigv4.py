"""AWS's front door for a REST-JSON service: SigV4 verification and the JSON errors it answers.

`authenticate(request, credentials, service, region)` returns the caller's access key id, or
the 403 AWS answers. The signature is recomputed with botocore's own `SigV4Auth` over what
arrived (method, target, the headers the client listed as signed, body) with the secret the
stand-in knows for that key, so a request signed with another secret, for another service or
region, or with a stale clock is refused as AWS refuses it.

Every error is `aws_error(status, code, members)`: the code in `x-amzn-ErrorType` (what
botocore's rest-json parser reads first), the modeled members as the JSON body, and an
`x-amzn-RequestId`. The refusals and where their texts come from:

| status | x-amzn-ErrorType | body `message` | source |
|---|---|---|---|
| 403 | MissingAuthenticationTokenException | "Missing Authentication Token" | AWS REST front (API Gateway's text) |
| 403 | IncompleteSignatureException | "Authorization header requires 'Credential' parameter. ..." | seen from AWS in public issues |
| 403 | UnrecognizedClientException | "The security token included in the request is invalid." | seen from AWS (Lambda, rest-json) |
| 403 | InvalidSignatureException | "The request signature we calculated does not match ..." + canonical request | Lambda's text |
| 403 | InvalidSignatureException | "Credential should be scoped to correct service: 'airflow'. " | seen from AWS (Batch, EMR) |
| 403 | InvalidSignatureException | "Credential should be scoped to a valid region. " | seen from AWS |
| 403 | InvalidSignatureException | "Signature expired: ... (... - 5 min.)" | AWS's text |
"""

from __future__ import annotations

import datetime
import hmac
import uuid
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.standins._http import Request, Response, json_response

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
CLOCK_SKEW = datetime.timedelta(minutes=5)
MISSING_TOKEN = "Missing Authentication Token"
INVALID_TOKEN = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)


def aws_error(status: int, code: str, members: dict[str, Any]) -> Response:
    """An AWS rest-json error: `x-amzn-ErrorType` names it, the body carries its members."""
    return json_response(
        status, members, {"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())}
    )


def aws_answer(payload: dict[str, Any]) -> Response:
    """A 200 rest-json answer."""
    return json_response(200, payload, {"x-amzn-RequestId": str(uuid.uuid4())})


def authenticate(
    request: Request, credentials: dict[str, str], service: str, region: str
) -> str | Response:
    """The access key id that signed `request`, or AWS's 403 for it."""
    header = request.header("Authorization")
    if not header:
        return aws_error(403, "MissingAuthenticationTokenException", {"message": MISSING_TOKEN})
    parsed = _parse_authorization(header, request.header("X-Amz-Date"))
    if isinstance(parsed, Response):
        return parsed
    credential, signed_headers, signature = parsed
    scope = credential.split("/")
    if len(scope) != 5:
        return _incomplete(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{credential}'"
        )
    access_key, day, scope_region, scope_service, terminator = scope
    secret = credentials.get(access_key)
    if secret is None:
        return aws_error(403, "UnrecognizedClientException", {"message": INVALID_TOKEN})
    amz_date = request.header("X-Amz-Date") or ""
    refusal = _scope_refusal(
        day, scope_region, scope_service, terminator, amz_date, service, region
    )
    if refusal is not None:
        return _invalid_signature(refusal)
    canonical, string_to_sign, expected = _expected_signature(
        request, access_key, secret, signed_headers, amz_date, scope_service, scope_region
    )
    if not hmac.compare_digest(expected, signature):
        return _invalid_signature(
            f"{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n"
            f"'{canonical}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
        )
    return access_key


def _parse_authorization(
    header: str, amz_date: str | None
) -> tuple[str, list[str], str] | Response:
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    if scheme == ALGORITHM:
        for part in rest.split(","):
            key, equals, value = part.strip().partition("=")
            if not equals:
                return _incomplete(
                    f"'{part.strip()}' not a valid key=value pair (missing equal-sign) in "
                    f"Authorization header: '{header}'."
                )
            params[key] = value
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    if not amz_date:
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if missing:
        return _incomplete(" ".join([*missing, f"Authorization={header}"]))
    return params["Credential"], params["SignedHeaders"].split(";"), params["Signature"]


def _scope_refusal(
    day: str,
    scope_region: str,
    scope_service: str,
    terminator: str,
    amz_date: str,
    service: str,
    region: str,
) -> str | None:
    if terminator != "aws4_request":
        return f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
    if scope_service != service:
        return f"Credential should be scoped to correct service: '{service}'. "
    if scope_region != region:
        return "Credential should be scoped to a valid region. "
    try:
        signed_at = datetime.datetime.strptime(amz_date, AMZ_DATE).replace(tzinfo=datetime.UTC)
    except ValueError:
        return f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
    if day != amz_date[:8]:
        return (
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{day}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    now = datetime.datetime.now(datetime.UTC)
    if signed_at < now - CLOCK_SKEW:
        return (
            f"Signature expired: {amz_date} is now earlier than "
            f"{(now - CLOCK_SKEW).strftime(AMZ_DATE)} ({now.strftime(AMZ_DATE)} - 5 min.)"
        )
    if signed_at > now + CLOCK_SKEW:
        return (
            f"Signature not yet current: {amz_date} is still later than "
            f"{(now + CLOCK_SKEW).strftime(AMZ_DATE)} ({now.strftime(AMZ_DATE)} + 5 min.)"
        )
    return None


def _expected_signature(
    request: Request,
    access_key: str,
    secret: str,
    signed_headers: list[str],
    amz_date: str,
    service: str,
    region: str,
) -> tuple[str, str, str]:
    """botocore's canonical request, string to sign and signature for what arrived."""
    headers = {name: request.headers[name] for name in signed_headers if name in request.headers}
    rebuilt = AWSRequest(
        method=request.method,
        url=f"http://{request.header('Host') or ''}{request.target}",
        data=request.body,
        headers=headers,
    )
    rebuilt.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, secret), service, region)
    canonical = signer.canonical_request(rebuilt)
    string_to_sign = signer.string_to_sign(rebuilt, canonical)
    return canonical, string_to_sign, signer.signature(string_to_sign, rebuilt)


def _incomplete(message: str) -> Response:
    return aws_error(403, "IncompleteSignatureException", {"message": message})


def _invalid_signature(message: str) -> Response:
    return aws_error(403, "InvalidSignatureException", {"message": message})
