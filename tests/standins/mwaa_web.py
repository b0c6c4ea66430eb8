"""MWAA's Airflow web server front, over real TLS, and the single-use web login tokens behind it.

One `MwaaWebFront` per environment (each MWAA environment has its own web server host). It
serves HTTPS on 127.0.0.1 with a leaf certificate for `127.0.0.1` issued by a throwaway CA
(`write_tls_files`); a client trusts it with `ca_certs=` or `SSL_CERT_FILE=<ca_file>`.

Airflow 2 (`/aws_mwaa/login`, then `/api/v1/...`):
- `POST /aws_mwaa/login` form `token=<WebToken>` → 302 `Location: /`,
  `Set-Cookie: session=<random>; Secure; HttpOnly; Path=/`; an unknown, used or expired token
  → 403. Requests with that cookie are forwarded to Airflow with the admin's headers; without
  a valid one → 401 with Airflow 2's problem JSON (what its session backend answers).
Airflow 3 (`/pluginsv2/aws_mwaa/login`, then `/api/v2/...`):
- the same form → 302, `Set-Cookie: _token=<JWT>; Path=/; SameSite=lax; Secure` (Airflow 3's
  cookie name); requests need `Authorization: Bearer <that JWT>`: none → 401 "Not
  authenticated", a token it did not sign → 403 "Invalid JWT token", expired (or revoked by
  `expire_sessions()`) → 401 "Token Expired", as Airflow 3's `get_user` answers.
The other version's login path answers 404 (observed on a real Airflow 2 environment, recorded
in public code). The login paths, form field and cookie names are those of Airflow's Amazon
provider (`MwaaHook._get_session_conn`); that the login answers 302 is assumed.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.standins._http import (
    LoopbackServer,
    Request,
    Response,
    _Server,
    forward,
    json_response,
    text_response,
)
from tests.standins.echo import Echoes

WEB_TOKEN_TTL = 60.0  # seconds, as CreateWebLoginToken documents
JWT_TTL = 86400  # Airflow 3's default [api_auth] jwt_expiration_time
HANDSHAKE_TIMEOUT = 5.0


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # the CA certificate a client trusts
    cert_file: Path  # the server's leaf certificate, then the CA's
    key_file: Path


@dataclass(frozen=True)
class WebIdentity:
    environment: str
    iam_identity: str
    airflow_identity: str


def write_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA and a leaf for 127.0.0.1 and localhost it signed, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dagtrigger MWAA stand-in CA")])
    ca_cert = (
        _certificate(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    leaf_cert = (
        _certificate(leaf_name, ca_name, leaf_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca_cert.public_bytes(pem))
    files.cert_file.write_bytes(leaf_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    files.key_file.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_file, files.key_file)
    return context


class WebSessions:
    """The web login tokens CreateWebLoginToken issues and the sessions logins open."""

    def __init__(self, token_ttl: float = WEB_TOKEN_TTL) -> None:
        self.token_ttl = token_ttl
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[WebIdentity, float]] = {}
        self._sessions: dict[str, WebIdentity] = {}  # cookie value or JWT id → who
        self._jwt_key = secrets.token_bytes(32)
        self.tokens_issued = 0
        self.logins = 0

    def issue_token(self, identity: WebIdentity) -> str:
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = (identity, time.monotonic() + self.token_ttl)
            self.tokens_issued += 1
        return token

    def redeem_token(self, token: str, environment: str) -> WebIdentity | None:
        """The identity `token` was issued to, once: unknown, used or expired → None."""
        with self._lock:
            identity, expires = self._tokens.pop(token, (None, 0.0))
            if identity is None or identity.environment != environment:
                return None
            if time.monotonic() >= expires:
                return None
            self.logins += 1
            return identity

    def open_session(self, identity: WebIdentity) -> str:
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session_id] = identity
        return session_id

    def session(self, session_id: str) -> WebIdentity | None:
        with self._lock:
            return self._sessions.get(session_id)

    def expire_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    def issue_jwt(self, identity: WebIdentity) -> str:
        now = int(time.time())
        claims = {
            "sub": identity.airflow_identity,
            "jti": self.open_session(identity),
            "aud": "apache-airflow",
            "iat": now,
            "nbf": now,
            "exp": now + JWT_TTL,
        }
        return _sign_hs256(self._jwt_key, claims)

    def verify_jwt(self, token: str) -> str | WebIdentity:
        """The identity behind `token`, or "invalid" / "expired"."""
        claims = _verify_hs256(self._jwt_key, token)
        if claims is None:
            return "invalid"
        identity = self.session(str(claims.get("jti")))
        if identity is None or int(claims.get("exp", 0)) <= time.time():
            return "expired"
        return identity


class TlsLoopbackServer(LoopbackServer):
    """A `LoopbackServer` that speaks HTTPS with `context`."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def _bind(self, handler: type[BaseHTTPRequestHandler]) -> _Server:
        return _TlsServer(("127.0.0.1", 0), handler, self._context)


class MwaaWebFront(TlsLoopbackServer):
    """One environment's Airflow web server as MWAA fronts it: web login, then the REST API."""

    def __init__(
        self,
        environment: str,
        airflow_major: int,
        upstream_url: str,
        airflow_headers: Callable[[], dict[str, str]],
        sessions: WebSessions,
        context: ssl.SSLContext,
        airflow_version: str,
        echoes: Echoes | None = None,
    ) -> None:
        super().__init__(context)
        self.environment = environment
        self.airflow_major = airflow_major
        self.upstream_url = upstream_url
        self.airflow_headers = airflow_headers
        self.sessions = sessions
        self.airflow_version = airflow_version
        self.echoes = echoes

    @property
    def login_path(self) -> str:
        return "/aws_mwaa/login" if self.airflow_major == 2 else "/pluginsv2/aws_mwaa/login"

    @property
    def api_prefix(self) -> str:
        return "/api/v1/" if self.airflow_major == 2 else "/api/v2/"

    def handle(self, request: Request) -> Response:
        echoed = self.echoes.answer(request) if self.echoes is not None else None
        if echoed is not None:
            return echoed
        if request.path == self.login_path and request.method == "POST":
            return self._login(request)
        if request.path.startswith(self.api_prefix):
            refusal = self._api_refusal(request)
            if refusal is not None:
                return refusal
            return forward(self.upstream_url, request, self.airflow_headers())
        if request.path == "/" and request.method in ("GET", "HEAD"):
            return text_response(200, "<!doctype html><title>Airflow</title>\n", "text/html")
        return text_response(404, "Not Found\n", "text/html")

    def _login(self, request: Request) -> Response:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        identity = self.sessions.redeem_token(form.get("token", ""), self.environment)
        if identity is None:
            return text_response(403, "Forbidden\n", "text/html")
        if self.airflow_major == 2:
            cookie = f"session={self.sessions.open_session(identity)}; Secure; HttpOnly; Path=/"
        else:
            cookie = f"_token={self.sessions.issue_jwt(identity)}; Path=/; SameSite=lax; Secure"
        return text_response(302, "", "text/html", {"Location": "/", "Set-Cookie": cookie})

    def _api_refusal(self, request: Request) -> Response | None:
        if self.airflow_major == 2:
            if self.sessions.session(_cookie(request, "session") or "") is not None:
                return None
            return json_response(
                401,
                {
                    "detail": None,
                    "status": 401,
                    "title": "Unauthorized",
                    "type": f"https://airflow.apache.org/docs/apache-airflow/{self.airflow_version}"
                    "/stable-rest-api-ref.html#section/Errors/Unauthenticated",
                },
                {"Content-Type": "application/problem+json"},
            )
        token = request.bearer()
        if token is None:
            return json_response(
                401, {"detail": "Not authenticated"}, {"WWW-Authenticate": "Bearer"}
            )
        verdict = self.sessions.verify_jwt(token)
        if verdict == "invalid":
            return json_response(403, {"detail": "Invalid JWT token"})
        if verdict == "expired":
            return json_response(401, {"detail": "Token Expired"})
        return None


class _TlsServer(_Server):
    """Handshakes in each connection's own thread, so a silent client holds up no other."""

    def __init__(self, address: tuple[str, int], handler: Any, context: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )

    def finish_request(self, request: Any, client_address: Any) -> None:
        connection: ssl.SSLSocket = request
        connection.settimeout(HANDSHAKE_TIMEOUT)
        try:
            connection.do_handshake()
        except OSError:  # ssl.SSLError and timeouts too: not a TLS client, or gone
            return
        super().finish_request(request, client_address)


def _cookie(request: Request, name: str) -> str | None:
    try:
        jar = SimpleCookie(request.header("Cookie") or "")
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def _certificate(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: Any
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _sign_hs256(key: bytes, claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _verify_hs256(key: bytes, token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(expected, _b64decode(parts[2])):
            return None
        claims = json.loads(_b64decode(parts[1]))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
