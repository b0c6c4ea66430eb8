"""RS256 JWTs and RSA keys as Google uses them, on `cryptography` and google-auth's own signer."""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt


@dataclass(frozen=True)
class Jwt:
    header: dict[str, Any]
    payload: dict[str, Any]
    signed_section: bytes
    signature: bytes


def parse_jwt(token: str) -> Jwt:
    """Split and decode a JWT without verifying it; ValueError if it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWT has three dot-separated parts")
    try:
        header, payload = (json.loads(_b64decode(part)) for part in parts[:2])
        signature = _b64decode(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a JWT: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("a JWT's header and payload are JSON objects")
    return Jwt(header, payload, f"{parts[0]}.{parts[1]}".encode(), signature)


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM, the form of `private_key` in the key files Google issues."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def sign_jwt(key: rsa.RSAPrivateKey, key_id: str, payload: dict[str, Any]) -> str:
    """An RS256 JWT with `kid` = `key_id`, signed by google-auth's own signer."""
    return str(jwt.encode(crypt.RSASigner(key, key_id), payload).decode())


def verifier(key: rsa.RSAPrivateKey) -> crypt.RSAVerifier:
    """google-auth's verifier for signatures by `key`."""
    return crypt.RSAVerifier(key.public_key())


def self_signed_certificate_pem(key: rsa.RSAPrivateKey) -> str:
    """An X.509 certificate for `key`, the form Google publishes at oauth2/v1/certs."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "standin.accounts.google.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
