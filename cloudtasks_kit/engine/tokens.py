"""Signing the tokens the engine sends: OIDC ID tokens as Google issues them, with a local key.

The key's self-signed certificate is published as a ``{kid: PEM}`` map, the format of Google's
``https://www.googleapis.com/oauth2/v1/certs``, so a handler verifies the engine's tokens exactly as it
verifies Google's, only with another certificate URL (or the map itself).
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import threading
import time
from typing import Any

from google.auth import crypt, jwt

__all__ = ["GOOGLE_ISSUER", "TokenSigner", "default_signer"]

GOOGLE_ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME = 3600


class TokenSigner:
    """An RSA key with a self-signed certificate, signing RS256 ID tokens.

    Tokens carry the wall-clock time (not the engine's virtual clock): the handler that verifies them
    checks expiry against its own clock.
    """

    def __init__(self, private_key_pem: bytes | None = None) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        if private_key_pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private_key_pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        else:
            key = serialization.load_pem_private_key(private_key_pem, password=None)  # type: ignore[assignment]
        self._certificate_pem = _self_signed_certificate(key)
        self.key_id = hashlib.sha1(self._certificate_pem).hexdigest()
        self._signer = crypt.RSASigner.from_string(private_key_pem, key_id=self.key_id)

    def certs(self) -> dict[str, str]:
        """``{kid: PEM certificate}``, what ``google.oauth2.id_token.verify_token`` fetches."""
        return {self.key_id: self._certificate_pem.decode()}

    def oidc_token(self, *, service_account_email: str, audience: str, now: float | None = None) -> str:
        """An ID token with the claims Cloud Tasks' tokens carry."""
        issued = int(time.time() if now is None else now)
        subject = _numeric_id(service_account_email)
        payload = {
            "iss": GOOGLE_ISSUER,
            "aud": audience,
            "azp": subject,
            "sub": subject,
            "email": service_account_email,
            "email_verified": True,
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME,
        }
        return str(jwt.encode(self._signer, payload).decode())

    def sign(self, payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """Sign arbitrary claims (for tests of the verifier)."""
        key_id = (header or {}).get("kid")  # a test may claim another key's id
        return str(jwt.encode(self._signer, payload, header=header, key_id=key_id).decode())


def oauth_token() -> str:
    """An opaque access token, shaped like Google's; it proves nothing and is meant to."""
    return "ya29.local-" + secrets.token_urlsafe(32)


def _numeric_id(email: str) -> str:
    """A stable 21-digit id for a service account, like Google's unique ids."""
    return str(int(hashlib.sha256(email.encode()).hexdigest(), 16))[:21]


def _self_signed_certificate(key: Any) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudtasks-kit local token signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


_default: TokenSigner | None = None
_default_lock = threading.Lock()


def default_signer() -> TokenSigner:
    """One signer per process, made on first use: generating an RSA key takes a noticeable moment."""
    global _default
    with _default_lock:
        if _default is None:
            _default = TokenSigner()
        return _default
