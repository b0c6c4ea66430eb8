"""What stands between a caller and Airflow on Google Cloud: Composer's front, IAP, Composer's API.

Each checks the caller's Google token against a `GoogleTokenServer`, answers refusals with the
status and body Google's does, and otherwise forwards the request to a real Airflow on loopback
with the Airflow credentials the test supplies (`airflow_headers()`) in place of the Google token.

- `ComposerFront`: Composer 2/3's web server: an OAuth access token with the cloud-platform scope.
- `IapFront`: Identity-Aware Proxy (Composer 1, self-hosted Airflow): an ID token whose audience
  is the IAP OAuth client id; unauthenticated GETs are redirected to Google's login with it.
- `ComposerEnvironmentsApi`: `GET /v1/projects/P/locations/L/environments/E`.

Every front records `requests_seen`: (method, path, email), email None when no identity was
established (no token, or a token it refused as invalid).

Where the refusals come from. IAP (text/html bodies, `X-Goog-IAP-Generated-Response: true`):
"Invalid IAP credentials: empty token" (302 to the login for GET/HEAD, 401 for other methods, as
IAP's FAQ says), "...: Unable to parse JWT", "...: JWT signature is invalid" (all three measured
against a real IAP, as recorded in public test code), "...: JWT audience doesn't match this
application (...)" (GoogleCloudPlatform/professional-services#603), "...: JWT 'email' claim isn't
a string" (googleapis/google-auth-library-nodejs#792); "...: Expired JWT" is seen only in public
test fixtures, and the 403 text is not verified. The login redirect's `client_id` is what Google's
Composer 1 sample reads. Google APIs' JSON errors: the two 401 messages and the IAM
"Permission '...' denied on resource (or it may not exist)." are Google's texts; that Composer's
web-server front answers with exactly these is assumed, not verified.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tests.standins._http import (
    LoopbackServer,
    Request,
    Response,
    forward,
    json_response,
    text_response,
)
from tests.standins.google_jwt import parse_jwt
from tests.standins.google_tokens import CLOUD_PLATFORM, GoogleTokenServer, Identity

_SEE = "See https://developers.google.com/identity/sign-in/web/devconsole-project."
MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    f"login cookie or other valid authentication credential. {_SEE}"
)
INVALID_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    f"cookie or other valid authentication credential. {_SEE}"
)
INSUFFICIENT_SCOPES = "Request had insufficient authentication scopes."
COMPOSER_GET = "composer.environments.get"
IAP_LOGIN = "https://accounts.google.com/o/oauth2/v2/auth"
IAP_FORBIDDEN = (
    "You don't have access. Please contact your administrator to request access to this "
    "IAP-secured resource.\n"
)
Seen = tuple[str, str, str | None]


def google_error(
    code: int, message: str, status: str, details: list[dict[str, Any]] | None = None
) -> Response:
    """Google's JSON error body, as its APIs and fronts answer."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    headers = (
        {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'} if code == 401 else {}
    )
    return json_response(code, {"error": error}, headers)


def permission_denied(permission: str) -> Response:
    return google_error(
        403,
        f"Permission '{permission}' denied on resource (or it may not exist).",
        "PERMISSION_DENIED",
        [_error_info("IAM_PERMISSION_DENIED", "iam.googleapis.com", {"permission": permission})],
    )


def composer_environment(
    name: str, airflow_uri: str, image_version: str = "composer-3-airflow-2.10.5-build.3"
) -> dict[str, Any]:
    """The environment resource Composer's API returns, with the fields clients read."""
    return {
        "name": name,
        "uuid": "9a1e7c55-0d2b-4f9e-8c41-3b0f6d2a7e10",
        "state": "RUNNING",
        "config": {
            "airflowUri": airflow_uri,
            "dagGcsPrefix": "gs://us-central1-standin-bucket/dags",
            "softwareConfig": {"imageVersion": image_version},
        },
        "createTime": "2025-01-06T09:00:00.000000Z",
        "updateTime": "2025-01-06T09:30:00.000000Z",
    }


class _GoogleFront(LoopbackServer):
    def __init__(self, token_server: GoogleTokenServer, allowed: set[str] | None) -> None:
        super().__init__()
        self.token_server = token_server
        self.allowed = allowed
        self._seen: list[Seen] = []
        self._seen_lock = threading.Lock()

    @property
    def requests_seen(self) -> list[Seen]:
        with self._seen_lock:
            return list(self._seen)

    def _see(self, request: Request, identity: Identity | None) -> None:
        with self._seen_lock:
            self._seen.append((request.method, request.path, identity.email if identity else None))

    def _access_token_refusal(self, request: Request) -> Response | Identity:
        """The caller's access token's identity, or the 401/403 Google's front answers."""
        token = request.bearer()
        identity = self.token_server.verify_access_token(token) if token else None
        self._see(request, identity)
        if token is None:
            return google_error(401, MISSING_CREDENTIALS, "UNAUTHENTICATED")
        if identity is None:
            return google_error(401, INVALID_CREDENTIALS, "UNAUTHENTICATED")
        if CLOUD_PLATFORM not in identity.scopes:
            return google_error(
                403,
                INSUFFICIENT_SCOPES,
                "PERMISSION_DENIED",
                [_error_info("ACCESS_TOKEN_SCOPE_INSUFFICIENT", "googleapis.com", {})],
            )
        if self.allowed is not None and identity.email not in self.allowed:
            return permission_denied(COMPOSER_GET)
        return identity


class ComposerFront(_GoogleFront):
    """Composer 2/3's web server front: a Google access token in, Airflow credentials out."""

    def __init__(
        self,
        upstream_url: str,
        token_server: GoogleTokenServer,
        airflow_headers: Callable[[], dict[str, str]],
        allowed: set[str] | None = None,
    ) -> None:
        super().__init__(token_server, allowed)
        self.upstream_url = upstream_url
        self.airflow_headers = airflow_headers

    def handle(self, request: Request) -> Response:
        outcome = self._access_token_refusal(request)
        if isinstance(outcome, Response):
            return outcome
        return forward(self.upstream_url, request, self.airflow_headers())


class IapFront(_GoogleFront):
    """Identity-Aware Proxy: an ID token for `client_id` in, Airflow credentials out."""

    def __init__(
        self,
        upstream_url: str,
        token_server: GoogleTokenServer,
        client_id: str,
        airflow_headers: Callable[[], dict[str, str]],
        allowed: set[str] | None = None,
    ) -> None:
        super().__init__(token_server, allowed)
        self.upstream_url = upstream_url
        self.client_id = client_id
        self.airflow_headers = airflow_headers

    @property
    def login_redirect(self) -> str:
        """Where IAP sends an unauthenticated GET: Google's login, naming the IAP client id."""
        query = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": "openid email",
            "redirect_uri": f"https://iap.googleapis.com/v1/oauth/clientIds/{self.client_id}:handleRedirect",
            "state": secrets.token_urlsafe(16),
        }
        return f"{IAP_LOGIN}?{urlencode(query)}"

    def handle(self, request: Request) -> Response:
        token = request.bearer()
        if token is None:
            self._see(request, None)
            # IAP redirects only requests a browser would follow; a POST gets 401 (IAP's FAQ).
            if request.method in ("GET", "HEAD"):
                return _iap_answer(302, "empty token", {"Location": self.login_redirect})
            return _iap_answer(401, "empty token")
        verdict = self.token_server.verify_id_token(token, self.client_id)
        if isinstance(verdict, str):
            self._see(request, None)
            return _iap_answer(401, self._reason(verdict, token))
        if not verdict.email:
            self._see(request, None)
            return _iap_answer(401, "JWT 'email' claim isn't a string")
        self._see(request, verdict)
        if self.allowed is not None and verdict.email not in self.allowed:
            return text_response(
                403, IAP_FORBIDDEN, "text/html", {"X-Goog-IAP-Generated-Response": "true"}
            )
        headers = {
            **self.airflow_headers(),
            "X-Goog-Authenticated-User-Email": f"accounts.google.com:{verdict.email}",
            "X-Goog-Authenticated-User-Id": f"accounts.google.com:{verdict.client_id}",
        }
        return forward(self.upstream_url, request, headers)

    def _reason(self, verdict: str, token: str) -> str:
        if verdict == "malformed":
            return "Unable to parse JWT"
        if verdict.startswith("wrong audience"):
            audience = parse_jwt(token).payload.get("aud")
            return (
                "JWT audience doesn't match this application ('aud' claim "
                f"({audience}) doesn't match expected value ({self.client_id}))"
            )
        if verdict == "expired":
            return "Expired JWT"
        return "JWT signature is invalid"  # a bad signature, or not signed by Google at all


class ComposerEnvironmentsApi(_GoogleFront):
    """composer.googleapis.com's `environments.get`, for the environments given by full name."""

    _PATH = re.compile(r"/v1(?:beta1)?/(projects/[^/]+/locations/[^/]+/environments/[^/]+)")

    def __init__(
        self,
        token_server: GoogleTokenServer,
        environments: dict[str, dict[str, Any]],
        allowed: set[str] | None = None,
    ) -> None:
        super().__init__(token_server, allowed)
        self.environments = environments

    @property
    def request_count(self) -> int:
        return len(self.requests_seen)

    def handle(self, request: Request) -> Response:
        match = self._PATH.fullmatch(request.path)
        if match is None or request.method != "GET":
            self._see(request, None)
            return google_error(404, "Method not found.", "NOT_FOUND")
        outcome = self._access_token_refusal(request)
        if isinstance(outcome, Response):
            return outcome
        name = match.group(1)
        environment = self.environments.get(name)
        if environment is None:
            return google_error(404, f"Environment {name} could not be found.", "NOT_FOUND")
        return json_response(200, {"name": name, "state": "RUNNING", **environment})


def _iap_answer(status: int, reason: str, headers: dict[str, str] | None = None) -> Response:
    return text_response(
        status,
        f"Invalid IAP credentials: {reason}",
        "text/html",
        {"X-Goog-IAP-Generated-Response": "true", **(headers or {})},
    )


def _error_info(reason: str, domain: str, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": domain,
        "metadata": metadata,
    }
