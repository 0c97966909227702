"""Verifying the OIDC token Cloud Tasks sends, in the handler, with google-auth.

``google.oauth2.id_token.verify_oauth2_token`` checks the signature, expiry and issuer, but the audience
only if you pass one and the email never. :class:`TokenVerifier` checks all of it, and the audience and
the allowed service accounts are required arguments, so neither can be skipped by accident::

    verifier = TokenVerifier(
        audience="https://worker.example.com/tasks",
        service_accounts=["tasks@my-project.iam.gserviceaccount.com"],
    )
    claims = verifier.verify(request.headers.get("Authorization"))

Google's certificates are fetched once and cached for as long as their ``Cache-Control`` says (refetched
early, at most once a minute, when a token names a key they do not have). Locally, pass the emulator's
``certs_url`` or the fake's ``certs``. The cryptography is google-auth's: :func:`google.auth.jwt.decode`
has the last word on every token.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import CloudTasksError, UsageError

__all__ = [
    "GOOGLE_CERTS_URL",
    "AuthError",
    "BadSignature",
    "EmailNotAllowed",
    "EmailNotVerified",
    "MalformedToken",
    "MissingToken",
    "NotBearer",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenVerifier",
    "VerifiedToken",
    "WrongAudience",
    "WrongIssuer",
]

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
_ACCEPTED_ALGORITHMS = ("RS256",)
_MIN_REFETCH = 60.0
_DEFAULT_CACHE = 3600.0


class AuthError(CloudTasksError):
    """The request's token was missing or did not verify; answer 401 and never run the task."""


class MissingToken(AuthError):
    """No Authorization header."""


class NotBearer(AuthError):
    """The Authorization header is not ``Bearer <token>``."""


class MalformedToken(AuthError):
    """The token is not a well-formed JWT."""


class BadSignature(AuthError):
    """The signature does not verify: another key, an unknown key, a tampered token, or ``alg: none``."""


class TokenExpired(AuthError):
    """``exp`` has passed (beyond the allowed clock skew)."""


class TokenNotYetValid(AuthError):
    """``iat`` is in the future (beyond the allowed clock skew)."""


class WrongIssuer(AuthError):
    """``iss`` is not Google's."""


class WrongAudience(AuthError):
    """``aud`` is not the audience this handler expects."""


class EmailNotAllowed(AuthError):
    """The token's service account is not in the allow-list."""


class EmailNotVerified(AuthError):
    """The token does not say ``email_verified: true``."""


@dataclasses.dataclass(frozen=True)
class VerifiedToken:
    """The claims of a token that passed every check."""

    email: str
    subject: str
    audience: str
    issuer: str
    issued_at: datetime
    expires_at: datetime
    claims: Mapping[str, Any]

    def __repr__(self) -> str:  # the claims stay out of logs
        return (
            f"VerifiedToken(email={self.email!r}, audience={self.audience!r}, expires_at={self.expires_at})"
        )


class TokenVerifier:
    """Checks the OIDC token of a Cloud Tasks request.

    Args:
        audience: the audience (or audiences) the handler accepts, usually the task URL or the one given in
            ``OidcToken(audience=...)``. Required, non-empty.
        service_accounts: the service-account emails allowed to send tasks. Required, non-empty.
        certs_url: where the signing certificates are (``{kid: PEM}``); Google's by default.
        certs: a fixed ``{kid: PEM}`` map instead of a URL (the fake's ``fake.certs()``).
        issuers: accepted ``iss`` values (Google's by default).
        clock_skew: how far ``iat`` and ``exp`` may be off (10 seconds by default).
        request: a ``google.auth.transport.Request`` for fetching certificates (requests by default).
    """

    def __init__(
        self,
        *,
        audience: str | Collection[str],
        service_accounts: Collection[str],
        certs_url: str = GOOGLE_CERTS_URL,
        certs: Mapping[str, str] | None = None,
        issuers: Collection[str] = GOOGLE_ISSUERS,
        clock_skew: timedelta = timedelta(seconds=10),
        request: Callable[..., Any] | None = None,
    ) -> None:
        audiences = [audience] if isinstance(audience, str) else list(audience)
        if not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise UsageError(
                "TokenVerifier needs audience=: the URL (or audience) your tasks' tokens are made for"
            )
        accounts = [service_accounts] if isinstance(service_accounts, str) else list(service_accounts)
        if not accounts or not all(isinstance(a, str) and "@" in a for a in accounts):
            raise UsageError(
                "TokenVerifier needs service_accounts=: the emails of the service accounts allowed to send tasks"
            )
        self.audiences = tuple(audiences)
        self.service_accounts = frozenset(a.lower() for a in accounts)
        self.issuers = tuple(issuers)
        self.clock_skew = int(clock_skew.total_seconds())
        self.certs_url = certs_url
        self._static = dict(certs) if certs is not None else None
        self._request = request
        self._cache: dict[str, str] = {}
        self._expires = 0.0
        self._fetched = 0.0
        self._lock = threading.Lock()

    def verify(self, authorization: str | None) -> VerifiedToken:
        """Verify an ``Authorization`` header's value; the claims, or an :class:`AuthError` saying what failed."""
        if authorization is None or not authorization.strip():
            raise MissingToken("no Authorization header: Cloud Tasks sends 'Bearer <OIDC token>'")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotBearer(f"the Authorization header is not 'Bearer <token>' (scheme {scheme[:20]!r})")
        return self.verify_token(token.strip())

    def verify_token(self, token: str) -> VerifiedToken:
        """Verify a bare token (see :meth:`verify`)."""
        from google.auth import crypt, jwt
        from google.auth import exceptions as auth_exceptions

        header, payload, signed, signature = _split(token)
        algorithm = header.get("alg")
        if algorithm not in _ACCEPTED_ALGORITHMS:
            raise BadSignature(f"algorithm {algorithm!r} is not accepted; Google signs with RS256")
        kid = header.get("kid")
        certificate = self._certificate(kid)
        if certificate is None:
            raise BadSignature(f"the token is signed by a key ({kid!r}) that is not among the certificates")
        if not crypt.verify_signature(signed, signature, [certificate]):
            raise BadSignature("the signature does not verify against the certificate")
        self._check_times(payload)
        audience = payload.get("aud")
        if audience not in self.audiences:
            raise WrongAudience(f"the token is for audience {audience!r}, not {', '.join(self.audiences)}")
        try:  # google-auth has the last word on signature, times and audience
            claims = jwt.decode(
                token, certs={kid: certificate}, audience=audience, clock_skew_in_seconds=self.clock_skew
            )
        except (ValueError, auth_exceptions.GoogleAuthError) as exc:
            raise MalformedToken(f"google-auth rejected the token ({type(exc).__name__})") from None
        return self._check_claims(claims)

    def _check_times(self, payload: Mapping[str, Any]) -> None:
        issued, expires = payload.get("iat"), payload.get("exp")
        if not isinstance(issued, (int, float)) or not isinstance(expires, (int, float)):
            raise MalformedToken("the token has no numeric 'iat' and 'exp'")
        now = time.time()
        if issued > now + self.clock_skew:
            raise TokenNotYetValid(f"the token is issued {issued - now:.0f} s in the future")
        if expires < now - self.clock_skew:
            raise TokenExpired(f"the token expired {now - expires:.0f} s ago")

    def _check_claims(self, claims: Mapping[str, Any]) -> VerifiedToken:
        issuer = claims.get("iss")
        if issuer not in self.issuers:
            raise WrongIssuer(f"the token is issued by {issuer!r}, not {' or '.join(self.issuers)}")
        email = claims.get("email")
        if not isinstance(email, str) or email.lower() not in self.service_accounts:
            raise EmailNotAllowed(f"the token's service account {email!r} is not allowed to send tasks here")
        if claims.get("email_verified") not in (True, "true"):
            raise EmailNotVerified(f"the token does not say the email {email!r} is verified")
        return VerifiedToken(
            email=email,
            subject=str(claims.get("sub", "")),
            audience=str(claims["aud"]),
            issuer=str(issuer),
            issued_at=datetime.fromtimestamp(claims["iat"], timezone.utc),
            expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc),
            claims=dict(claims),
        )

    # Certificates.

    def needs_fetch(self) -> bool:
        """True if the next verification will fetch certificates (an async handler runs it in a thread)."""
        return self._static is None and time.monotonic() >= self._expires

    def _certificate(self, kid: Any) -> str | None:
        if self._static is not None:
            return self._static.get(kid) if isinstance(kid, str) else None
        with self._lock:
            now = time.monotonic()
            stale = now >= self._expires
            unknown = kid not in self._cache and now - self._fetched >= _MIN_REFETCH
            if stale or unknown:
                self._fetch(now)
            return self._cache.get(kid) if isinstance(kid, str) else None

    def _fetch(self, now: float) -> None:
        request = self._request
        if request is None:
            from google.auth.transport.requests import Request

            request = self._request = Request()
        response = request(self.certs_url, method="GET")
        if response.status != 200:
            raise AuthError(f"could not fetch certificates from {self.certs_url}: HTTP {response.status}")
        data = response.data.decode() if isinstance(response.data, bytes) else response.data
        certs = json.loads(data)
        if not isinstance(certs, dict) or "keys" in certs:
            raise AuthError(f"{self.certs_url} did not answer a {{kid: PEM certificate}} map")
        self._cache = {str(k): str(v) for k, v in certs.items()}
        self._fetched = now
        self._expires = now + _max_age(getattr(response, "headers", {}) or {})


def _max_age(headers: Mapping[str, str]) -> float:
    control = next((v for k, v in headers.items() if k.lower() == "cache-control"), "")
    match = re.search(r"max-age=(\d+)", control)
    return float(match.group(1)) if match else _DEFAULT_CACHE


def _split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """The header, claims, signed part and signature of a JWT, unverified (to say what is wrong with it)."""
    parts = token.encode("ascii", "replace").split(b".")
    if len(parts) != 3:
        raise MalformedToken(f"a JWT has 3 dot-separated parts; this one has {len(parts)}")
    try:
        header = json.loads(_b64(parts[0]))
        payload = json.loads(_b64(parts[1]))
        signature = _b64(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise MalformedToken("the token's parts are not base64url-encoded JSON") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise MalformedToken("the token's header and claims must be JSON objects")
    return header, payload, parts[0] + b"." + parts[1], signature


def _b64(part: bytes) -> bytes:
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))
