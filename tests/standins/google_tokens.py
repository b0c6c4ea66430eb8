"""Google's OAuth2 token endpoint and the Compute Engine metadata server, on one loopback port.

    with GoogleTokenServer() as tokens:
        key = tokens.service_account_key()          # a key file Google would issue; trusted
        tokens.patch_google_auth_metadata(monkeypatch)  # google-auth's GCE code uses this server

The token endpoint (`POST /token`) takes what `google.oauth2.service_account` sends: a form with
`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an RS256 `assertion` signed by a key
from `service_account_key()`. With a `target_audience` claim it answers `{"id_token": ...}`,
otherwise an opaque access token. The metadata server answers under `/computeMetadata/v1/` as the
`metadata_identity` service account. ID tokens are signed by the server's own key, published at
`/oauth2/v1/certs` (`certs_url`) as Google publishes its own.

Refusals, as Google's endpoints answer them:
- token endpoint, 400 JSON `{"error", "error_description"}`: `invalid_grant` "Invalid JWT
  Signature." (unknown key id, bad signature, `iss` not the key's account: Google's text, seen in
  googleapis/google-cloud-python#10004); `invalid_grant` "Invalid JWT: Token must be a short-lived
  token (60 minutes) and in a reasonable timeframe. ..." (iat/exp; the text of
  googleapis/google-api-php-client#1501); `invalid_grant` "Invalid JWT: Failed audience check. ..."
  (aud); `invalid_scope` "Empty or missing scope not allowed."; `unsupported_grant_type`.
- metadata server: 403 without `Metadata-Flavor: Google` (every response carries that header,
  which google-auth's ping checks); 400 for an identity request without `audience`.

`access_tokens_issued` and `id_tokens_issued` count what clients obtained over HTTP; tokens a test
makes with `issue_access_token` / `issue_id_token` are not counted. `assertions_received` and
`id_tokens_presented` keep what clients showed: credentials a test may look for where they must
not be (logs, messages).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, quote

from google.auth import crypt

from tests.standins._http import (
    LoopbackServer,
    Request,
    Response,
    json_response,
    text_response,
)
from tests.standins.google_jwt import (
    new_rsa_key,
    parse_jwt,
    private_key_pem,
    self_signed_certificate_pem,
    sign_jwt,
    verifier,
)

if TYPE_CHECKING:
    import pytest

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_TOKEN_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
# google-auth always puts the first in an assertion's `aud`, whatever token_uri the key names.
ASSERTION_AUDIENCES = (
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
    "https://www.googleapis.com/oauth2/v4/token",
)
CLOCK_SKEW = 300  # seconds of iat in the future the token endpoint tolerates
METADATA_ROOT = "/computeMetadata/v1/"


class ServiceAccount(NamedTuple):
    email: str
    client_id: str  # the numeric OAuth2 client id, `sub` of its ID tokens


DEFAULT_ACCOUNT = ServiceAccount(
    "dagtrigger@acme-data.iam.gserviceaccount.com", "112233445566778899001"
)


@dataclass(frozen=True)
class Identity:
    """Who a token was issued to, and until when (epoch seconds)."""

    email: str
    client_id: str
    expiry: float
    scopes: tuple[str, ...] = ()


class GoogleTokenServer(LoopbackServer):
    """Google's token endpoint and metadata server on one port of 127.0.0.1.

    Start it before `service_account_key()`: the key's `token_uri` names the port.
    """

    def __init__(
        self,
        *,
        project_id: str = "acme-data",
        project_number: str = "123456789012",
        metadata_identity: ServiceAccount | tuple[str, str] = DEFAULT_ACCOUNT,
        metadata_scopes: tuple[str, ...] = (CLOUD_PLATFORM,),
        access_token_lifetime: int = 3600,
        id_token_lifetime: int = 3600,
    ) -> None:
        super().__init__()
        self.project_id = project_id
        self.project_number = project_number
        self.metadata_identity = ServiceAccount(*metadata_identity)
        self.metadata_scopes = metadata_scopes
        self.access_token_lifetime = access_token_lifetime
        self.id_token_lifetime = id_token_lifetime
        self._lock = threading.Lock()
        self._trusted: dict[str, tuple[ServiceAccount, crypt.RSAVerifier]] = {}
        self._access_tokens: dict[str, Identity] = {}
        self._access_tokens_issued = 0
        self._id_tokens_issued = 0
        self._assertions_received: list[str] = []
        self._id_tokens_presented: list[str] = []
        self._signing_key = new_rsa_key()
        self._signing_key_id = secrets.token_hex(20)
        self._verifier = verifier(self._signing_key)

    # ---- what tests read and set up ----

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def certs_url(self) -> str:
        """The ID token signing certificates, for `google.oauth2.id_token.verify_token`."""
        return f"{self.url}/oauth2/v1/certs"

    @property
    def access_tokens_issued(self) -> int:
        """Access tokens issued over HTTP: token endpoint and metadata server."""
        with self._lock:
            return self._access_tokens_issued

    @property
    def id_tokens_issued(self) -> int:
        """ID tokens issued over HTTP: token endpoint and metadata server."""
        with self._lock:
            return self._id_tokens_issued

    @property
    def assertions_received(self) -> list[str]:
        """Every assertion posted to the token endpoint; a valid one buys tokens for an hour."""
        with self._lock:
            return list(self._assertions_received)

    @property
    def id_tokens_presented(self) -> list[str]:
        """Every ID token given to `verify_id_token`: what clients showed IAP."""
        with self._lock:
            return list(self._id_tokens_presented)

    def metadata_env(self) -> dict[str, str]:
        """The environment that points google-auth's Compute Engine code at this server."""
        return {"GCE_METADATA_HOST": self.host, "GCE_METADATA_IP": self.host}

    def patch_google_auth_metadata(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Set `metadata_env()` for one test, in this process.

        google-auth reads GCE_METADATA_HOST once, when `google.auth.compute_engine._metadata` is
        first imported, so setting the variable is not enough in a process that already has.
        """
        from google.auth.compute_engine import _metadata

        for name, value in self.metadata_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", self.host)

    def service_account_key(
        self, email: str = DEFAULT_ACCOUNT.email, client_id: str = DEFAULT_ACCOUNT.client_id
    ) -> dict[str, str]:
        """A new key pair as the JSON key file Google issues; this server trusts it from now on."""
        key = new_rsa_key()
        key_id = secrets.token_hex(20)
        with self._lock:
            self._trusted[key_id] = (ServiceAccount(email, client_id), verifier(key))
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": key_id,
            "private_key": private_key_pem(key),
            "client_email": email,
            "client_id": client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + quote(email),
            "universe_domain": "googleapis.com",
        }

    def issue_access_token(
        self,
        email: str = DEFAULT_ACCOUNT.email,
        lifetime: int | None = None,
        scopes: tuple[str, ...] = (CLOUD_PLATFORM,),
        client_id: str = "",
    ) -> str:
        """An access token for `email`, as if Google issued it (not counted)."""
        return self._mint_access_token(
            Identity(email, client_id, time.time() + self._lifetime(lifetime, access=True), scopes),
            count=False,
        )

    def issue_id_token(
        self,
        account: ServiceAccount | tuple[str, str] = DEFAULT_ACCOUNT,
        audience: str = "",
        lifetime: int | None = None,
        issued_at: float | None = None,
        with_email: bool = True,
    ) -> str:
        """An ID token signed by this server, as if Google issued it (not counted)."""
        return self._mint_id_token(
            ServiceAccount(*account), audience, lifetime, issued_at, with_email, count=False
        )

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired, as if its hour had passed."""
        now = time.time()
        with self._lock:
            for token, identity in self._access_tokens.items():
                self._access_tokens[token] = replace(identity, expiry=min(identity.expiry, now))

    def verify_access_token(self, token: str) -> Identity | None:
        """The identity of a valid access token this server issued, else None."""
        with self._lock:
            identity = self._access_tokens.get(token)
        return identity if identity is not None and identity.expiry > time.time() else None

    def verify_id_token(self, token: str, audience: str) -> Identity | str:
        """The identity of a valid ID token for `audience`, else why not: "malformed",
        "bad signature", "wrong issuer 'x'", "wrong audience 'x'", "expired"."""
        with self._lock:
            self._id_tokens_presented.append(token)
        try:
            parsed = parse_jwt(token)
        except ValueError:
            return "malformed"
        if parsed.header.get("kid") != self._signing_key_id or not self._verifier.verify(
            parsed.signed_section, parsed.signature
        ):
            return "bad signature"
        claims = parsed.payload
        if claims.get("iss") not in ID_TOKEN_ISSUERS:
            return f"wrong issuer {claims.get('iss')!r}"
        if claims.get("aud") != audience:
            return f"wrong audience {claims.get('aud')!r}"
        expiry = claims.get("exp")
        if not isinstance(expiry, int | float) or expiry <= time.time():
            return "expired"
        email = claims.get("email")
        return Identity(email if isinstance(email, str) else "", str(claims.get("sub")), expiry)

    # ---- the protocol ----

    def handle(self, request: Request) -> Response:
        if request.path == "/token":
            return self._token_endpoint(request)
        if request.path == "/oauth2/v1/certs":
            return json_response(
                200, {self._signing_key_id: self_signed_certificate_pem(self._signing_key)}
            )
        if request.path == "/" or request.path.startswith("/computeMetadata/"):
            return self._metadata(request)
        return text_response(404, "Not Found\n")

    def _token_endpoint(self, request: Request) -> Response:
        if request.method != "POST":
            return text_response(405, "Method Not Allowed\n")
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        if "assertion" in form:
            with self._lock:
                self._assertions_received.append(form["assertion"])
        if form.get("grant_type") != JWT_BEARER:
            return _oauth_error(
                "unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type', '')}"
            )
        try:
            assertion = parse_jwt(form.get("assertion", ""))
        except ValueError:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        with self._lock:
            trusted = self._trusted.get(str(assertion.header.get("kid")))
        claims = assertion.payload
        if (
            trusted is None
            or not trusted[1].verify(assertion.signed_section, assertion.signature)
            or claims.get("iss") != trusted[0].email
        ):
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        account = trusted[0]
        if claims.get("aud") not in (*ASSERTION_AUDIENCES, self.token_uri):
            return _oauth_error(
                "invalid_grant",
                f"Invalid JWT: Failed audience check. The expected audience is {ASSERTION_AUDIENCES[0]}.",
            )
        if not _reasonable_timeframe(claims.get("iat"), claims.get("exp")):
            return _oauth_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values and use a clock with skew to account for "
                "clock differences between systems.",
            )
        if claims.get("sub") not in (None, account.email):
            return _oauth_error(
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client "
                "not authorized for any of the scopes requested.",
            )
        if "target_audience" in claims:
            id_token = self._mint_id_token(account, str(claims["target_audience"]), count=True)
            return json_response(200, {"id_token": id_token})
        scopes = tuple(str(claims.get("scope") or "").split())
        if not scopes:
            return _oauth_error("invalid_scope", "Empty or missing scope not allowed.")
        lifetime = self._lifetime(None, access=True)
        token = self._mint_access_token(
            Identity(account.email, account.client_id, time.time() + lifetime, scopes), count=True
        )
        return json_response(
            200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
        )

    def _metadata(self, request: Request) -> Response:
        flavor = {"Metadata-Flavor": "Google"}
        if request.path == "/":  # google-auth's ping: it checks the status and this header
            return text_response(200, "computeMetadata/\n", headers=flavor)
        if request.header("Metadata-Flavor") != "Google":
            return text_response(
                403,
                f"Your client does not have permission to get URL {request.path} from this "
                "server. Missing Metadata-Flavor:Google header.\n",
                "text/html",
                flavor,
            )
        path = request.path.removeprefix(METADATA_ROOT)
        account = self.metadata_identity
        for alias in ("default", account.email):
            prefix = f"instance/service-accounts/{alias}/"
            if path.startswith(prefix):
                return self._metadata_account(request, path.removeprefix(prefix), flavor)
        texts = {
            "project/project-id": self.project_id,
            "project/numeric-project-id": self.project_number,
            "universe/universe-domain": "googleapis.com",
            "instance/service-accounts/": f"default/\n{account.email}/\n",
        }
        if path in texts:
            return text_response(200, texts[path], "application/text", flavor)
        return text_response(404, "Not Found\n", "text/html", flavor)

    def _metadata_account(self, request: Request, leaf: str, flavor: dict[str, str]) -> Response:
        account = self.metadata_identity
        if leaf == "" and request.query.get("recursive") == "true":
            info = {
                "aliases": ["default"],
                "email": account.email,
                "scopes": list(self.metadata_scopes),
            }
            return json_response(200, info, flavor)
        if leaf == "email":
            return text_response(200, account.email, "application/text", flavor)
        if leaf == "token":
            requested = request.query.get("scopes")
            scopes = tuple(requested.split(",")) if requested else self.metadata_scopes
            lifetime = self._lifetime(None, access=True)
            token = self._mint_access_token(
                Identity(account.email, account.client_id, time.time() + lifetime, scopes),
                count=True,
            )
            body = {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
            return json_response(200, body, flavor)
        if leaf == "identity":
            audience = request.query.get("audience")
            if not audience:
                return text_response(
                    400, "non-empty audience parameter required\n", "text/html", flavor
                )
            # Only format=full carries the email; IAP refuses tokens without it.
            full = request.query.get("format") == "full"
            token = self._mint_id_token(account, audience, with_email=full, count=True)
            return text_response(200, token, "text/html", flavor)
        return text_response(404, "Not Found\n", "text/html", flavor)

    # ---- minting ----

    def _lifetime(self, lifetime: int | None, access: bool) -> int:
        if lifetime is not None:
            return lifetime
        return self.access_token_lifetime if access else self.id_token_lifetime

    def _mint_access_token(self, identity: Identity, count: bool) -> str:
        token = "ya29.standin-" + secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[token] = identity
            self._access_tokens_issued += count
        return token

    def _mint_id_token(
        self,
        account: ServiceAccount,
        audience: str,
        lifetime: int | None = None,
        issued_at: float | None = None,
        with_email: bool = True,
        *,
        count: bool,
    ) -> str:
        iat = int(time.time() if issued_at is None else issued_at)
        claims: dict[str, Any] = {
            "iss": ID_TOKEN_ISSUERS[0],
            "aud": audience,
            "azp": account.client_id,
            "sub": account.client_id,
            "iat": iat,
            "exp": iat + self._lifetime(lifetime, access=False),
        }
        if with_email:
            claims.update(email=account.email, email_verified=True)
        token = sign_jwt(self._signing_key, self._signing_key_id, claims)
        with self._lock:
            self._id_tokens_issued += count
        return token


def _oauth_error(error: str, description: str) -> Response:
    return json_response(400, {"error": error, "error_description": description})


def _reasonable_timeframe(iat: Any, exp: Any) -> bool:
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        return False
    now = time.time()
    return iat <= now + CLOCK_SKEW and now < exp and 0 < exp - iat <= 3600
