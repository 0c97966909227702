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
early, at most once a minute, when a token names a key they do not have), with a short timeout, one fetch
at a time, and failures remembered briefly: see :mod:`cloudtasks_kit.certs`. When they cannot be had the
verifier raises :class:`CertificatesUnavailable` (the handler answers 503 with ``Retry-After``), never a
stray exception. Locally, pass the emulator's ``certs_url`` or the fake's ``certs``, or run a worker with
``CLOUDTASKS_HANDLER_TRUST_EMULATOR=1`` beside the emulator's address (:func:`emulator_certs_url`).

A token is a stranger's input until it verifies: before any of it is used it must be at most
``MAX_TOKEN_CHARS`` of ASCII, its header and claims flat JSON objects, its ``kid`` a short string. Error
messages quote what they refuse only in part (:func:`cloudtasks_kit._redact.shorten`). The cryptography is
google-auth's: :func:`google.auth.jwt.decode` has the last word on every token.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeGuard

from . import _json
from ._emulator_env import EMULATOR_HOST_ENV, EMULATOR_REST_HOST_ENV, TRUST_EMULATOR_ENV, rest_url
from ._hosts import is_loopback_host
from ._redact import redact_url, shorten
from .certs import DEFAULT_FAILURE_TTL, DEFAULT_TIMEOUT, CertificateSource, SourceUnavailable
from .errors import CloudTasksError, UsageError

__all__ = [
    "GOOGLE_CERTS_URL",
    "AuthError",
    "BadSignature",
    "CertificatesUnavailable",
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
    "emulator_certs_url",
]

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
_ACCEPTED_ALGORITHMS = ("RS256",)
MAX_TOKEN_CHARS = 16 * 1024
"""The longest token accepted: Google's ID tokens are about 1 KB."""
MAX_KID_CHARS = 256
_MAX_TOKEN_DEPTH = 4  # the claims of an ID token are flat; a nested claim is at most an array or two
_LATEST_TIME = 10**11  # seconds since the epoch, around the year 5138: beyond it a time is nonsense
# Set by Cloud Run, App Engine and Cloud Functions: where a handler runs in production.
GOOGLE_RUNTIME_VARIABLES = ("K_SERVICE", "GAE_SERVICE", "FUNCTION_TARGET")

log = logging.getLogger("cloudtasks_kit.verify")


class AuthError(CloudTasksError):
    """The request's token was missing or did not verify; answer 401 and never run the task."""


class CertificatesUnavailable(AuthError):
    """The signing certificates could not be fetched, so the token could not be judged.

    Not the caller's fault: the handler answers 503 with ``Retry-After`` and Cloud Tasks retries.

    Attributes:
        retry_after: seconds after which a new fetch will be tried.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
        fetch_timeout: seconds a certificate fetch may take (5 by default; google-auth's own is 120).
        failure_ttl: seconds a failed certificate fetch is remembered, answering 503 at once, before the
            next try (10 by default).
        allow_non_google_certs: trust signing keys that are not Google's beyond this machine. Without it,
            ``certs``/``certs_url`` other than Google's are refused on Cloud Run, App Engine and Cloud
            Functions, and a ``certs_url`` must be on a loopback host: the emulator's and the fake's keys
            sign anything for anyone, so a production handler trusting them trusts everybody.
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
        fetch_timeout: float = DEFAULT_TIMEOUT,
        failure_ttl: float = DEFAULT_FAILURE_TTL,
        allow_non_google_certs: bool = False,
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
        if not (math.isfinite(fetch_timeout) and fetch_timeout > 0):
            raise UsageError(
                f"TokenVerifier fetch_timeout={fetch_timeout!r} must be a positive number of seconds"
            )
        if not (math.isfinite(failure_ttl) and failure_ttl >= 0):
            raise UsageError(f"TokenVerifier failure_ttl={failure_ttl!r} must be zero or more seconds")
        _check_certs_source(certs_url, certs is not None, allow_non_google_certs)
        self.audiences = tuple(audiences)
        self.service_accounts = frozenset(a.lower() for a in accounts)
        self.issuers = tuple(issuers)
        self.clock_skew = int(clock_skew.total_seconds())
        self.certs_url = certs_url
        self._static = dict(certs) if certs is not None else None
        self.certificates = CertificateSource(
            certs_url, request=request, timeout=fetch_timeout, failure_ttl=failure_ttl
        )
        """The certificate cache (its ``stats`` count fetches, failures and negative-cache hits)."""

    def verify(self, authorization: str | None, *, may_block: bool = True) -> VerifiedToken:
        """Verify an ``Authorization`` header's value; the claims, or an :class:`AuthError` saying what failed.

        With ``may_block=False`` a verification that needs to fetch certificates raises
        :class:`cloudtasks_kit.certs.WouldBlock` instead (call again from a thread).
        """
        if authorization is None or not authorization.strip():
            raise MissingToken("no Authorization header: Cloud Tasks sends 'Bearer <OIDC token>'")
        if len(authorization) > MAX_TOKEN_CHARS + 16:
            raise MalformedToken(
                f"the Authorization header is {len(authorization)} characters; a token is at most {MAX_TOKEN_CHARS}"
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotBearer(
                f"the Authorization header is not 'Bearer <token>' (scheme {shorten(scheme, 20)})"
            )
        return self.verify_token(token.strip(), may_block=may_block)

    def verify_token(self, token: str, *, may_block: bool = True) -> VerifiedToken:
        """Verify a bare token (see :meth:`verify`)."""
        from google.auth import crypt, jwt
        from google.auth import exceptions as auth_exceptions

        header, payload, signed, signature = _split(token)
        algorithm = header.get("alg")
        if algorithm not in _ACCEPTED_ALGORITHMS:
            raise BadSignature(f"algorithm {shorten(algorithm, 20)} is not accepted; Google signs with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
            raise MalformedToken(
                f"the token header's 'kid' is {shorten(kid, 40)} ({type(kid).__name__}); "
                f"it must be a string of 1 to {MAX_KID_CHARS} characters"
            )
        certificate = self._certificate(kid, may_block)
        if certificate is None:
            raise BadSignature(
                f"the token is signed by a key ({shorten(kid, 48)}) that is not among the certificates"
            )
        try:
            verified = crypt.verify_signature(signed, signature, [certificate])
        except (ValueError, TypeError):  # a certificate google-auth cannot load is no proof of anything
            raise BadSignature(f"the certificate for key {shorten(kid, 48)} cannot be used") from None
        if not verified:
            raise BadSignature("the signature does not verify against the certificate")
        self._check_times(payload)
        audience = payload.get("aud")
        if not isinstance(audience, str) or audience not in self.audiences:
            raise WrongAudience(
                f"the token is for audience {shorten(audience, 120)}, not {', '.join(self.audiences)}"
            )
        try:  # google-auth has the last word on signature, times and audience
            claims = jwt.decode(
                token, certs={kid: certificate}, audience=audience, clock_skew_in_seconds=self.clock_skew
            )
        except (ValueError, TypeError, auth_exceptions.GoogleAuthError) as exc:
            raise MalformedToken(f"google-auth rejected the token ({type(exc).__name__})") from None
        return self._check_claims(claims)

    def _check_times(self, payload: Mapping[str, Any]) -> None:
        issued, expires = payload.get("iat"), payload.get("exp")
        if not (_is_time(issued) and _is_time(expires)):
            raise MalformedToken("the token has no numeric 'iat' and 'exp' (seconds since the epoch)")
        now = time.time()
        if issued > now + self.clock_skew:
            raise TokenNotYetValid(f"the token is issued {issued - now:.0f} s in the future")
        if expires < now - self.clock_skew:
            raise TokenExpired(f"the token expired {now - expires:.0f} s ago")

    def _check_claims(self, claims: Mapping[str, Any]) -> VerifiedToken:
        issuer = claims.get("iss")
        if issuer not in self.issuers:
            raise WrongIssuer(
                f"the token is issued by {shorten(issuer, 80)}, not {' or '.join(self.issuers)}"
            )
        email = claims.get("email")
        if not isinstance(email, str) or email.lower() not in self.service_accounts:
            raise EmailNotAllowed(
                f"the token's service account {shorten(email, 120)} is not allowed to send tasks here"
            )
        if claims.get("email_verified") not in (True, "true"):
            raise EmailNotVerified(f"the token does not say the email {shorten(email, 120)} is verified")
        return VerifiedToken(
            email=email,
            subject=str(claims.get("sub", ""))[:MAX_KID_CHARS],
            audience=str(claims["aud"]),
            issuer=str(issuer),
            issued_at=datetime.fromtimestamp(claims["iat"], timezone.utc),
            expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc),
            claims=dict(claims),
        )

    # Certificates.

    def needs_fetch(self, kid: str | None = None) -> bool:
        """True if verifying a token signed by ``kid`` (any key, with None) would fetch certificates."""
        return self._static is None and self.certificates.needs_fetch(kid)

    def _certificate(self, kid: str, may_block: bool) -> str | None:
        if self._static is not None:
            return self._static.get(kid)
        try:
            return self.certificates.get(kid, may_block=may_block)
        except SourceUnavailable as exc:
            raise CertificatesUnavailable(str(exc), exc.retry_after) from None


def _check_certs_source(certs_url: str, static: bool, allowed: bool) -> None:
    """Refuse, unless told, a signing-key source that is not Google's where that cannot be meant."""
    if not static and certs_url == GOOGLE_CERTS_URL:
        return
    where = "a fixed certificate map (certs=)" if static else f"certs_url={redact_url(certs_url)!r}"
    if not allowed:
        runtime = next((name for name in GOOGLE_RUNTIME_VARIABLES if os.environ.get(name)), None)
        if runtime is not None:
            raise UsageError(
                f"TokenVerifier got {where}, but this is a Google runtime ({runtime} is set): tokens signed by "
                "the emulator's or the fake's keys would be trusted in production. Leave certs/certs_url "
                "out to use Google's certificates, or pass allow_non_google_certs=True if you really mean it"
            )
        if not static and not _is_loopback(certs_url):
            raise UsageError(
                f"TokenVerifier got {where}: not Google's certificates and not on this machine (the rule: "
                "Google's URL, or a loopback host such as 127.0.0.1 for the emulator). Pass "
                "allow_non_google_certs=True for another host you control (a compose network, a mirror)"
            )
    log.warning("verifying task tokens against %s, not Google's certificates: for development only", where)


_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")


def emulator_certs_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The emulator's certificate URL if ``CLOUDTASKS_HANDLER_TRUST_EMULATOR=1`` asks a handler to trust it.

    The one switch for a worker in development: :class:`~cloudtasks_kit.TaskHandler` made with its
    default verification calls this, and verifies tokens against the URL it returns (None: Google's
    certificates, as in production). It is honoured only beside ``CLOUDTASKS_EMULATOR_REST_HOST`` or
    ``CLOUDTASKS_EMULATOR_HOST`` (the certificates are the emulator's REST ``/certs``), never on Cloud
    Run, App Engine or Cloud Functions, and only on a loopback host (the rules of ``certs_url``); the
    emulator's key signs tokens for anyone, so each refusal is a :class:`UsageError` at start-up rather
    than a handler that quietly trusts everybody. Switched on, it logs a WARNING naming the URL.
    """
    env = os.environ if environ is None else environ
    raw = env.get(TRUST_EMULATOR_ENV)
    if raw is None or raw.strip().lower() in _OFF:
        return None
    if raw.strip().lower() not in _ON:
        raise UsageError(
            f"{TRUST_EMULATOR_ENV}={shorten(raw, 40)} must be 1 (trust the emulator's certificates) or 0"
        )
    runtime = next((name for name in GOOGLE_RUNTIME_VARIABLES if env.get(name)), None)
    if runtime is not None:
        raise UsageError(
            f"{TRUST_EMULATOR_ENV}=1 on a Google runtime ({runtime} is set): a production handler would trust "
            "tokens anyone can mint with the emulator. Unset it: it is for a worker on your machine"
        )
    grpc_host, rest_host = env.get(EMULATOR_HOST_ENV) or None, env.get(EMULATOR_REST_HOST_ENV) or None
    if grpc_host is None and rest_host is None:
        raise UsageError(
            f"{TRUST_EMULATOR_ENV}=1 but neither {EMULATOR_REST_HOST_ENV} nor {EMULATOR_HOST_ENV} is set: "
            "the certificates to trust are the emulator's, so say where it runs (as printed by "
            "`cloudtasks-kit emulator`), or unset it to verify with Google's certificates"
        )
    try:
        url = rest_url(grpc_host, rest_host) + "/certs"
    except ValueError:
        raise UsageError(
            f"{EMULATOR_HOST_ENV}={shorten(grpc_host, 60)} must be host:port (for {TRUST_EMULATOR_ENV}=1)"
        ) from None
    if not _is_loopback(url):
        raise UsageError(
            f"{TRUST_EMULATOR_ENV}=1 names certificates at {redact_url(url)!r}, which is not on this machine "
            "(the rule: a loopback host such as 127.0.0.1). For an emulator on another host you control, "
            "pass TaskHandler(app, verifier=TokenVerifier(..., certs_url=..., allow_non_google_certs=True))"
        )
    log.warning(
        "%s=1: task tokens are verified against the emulator's certificates at %s, not Google's; "
        "anyone who can mint emulator tokens can run tasks here. For development only",
        TRUST_EMULATOR_ENV,
        url,
    )
    return url


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme not in ("http", "https"):
        return False
    return is_loopback_host(host, unspecified=True)  # 0.0.0.0: an emulator bound to every interface


def _is_time(value: object) -> TypeGuard[float]:
    """A number of seconds since the epoch a datetime can hold (booleans are not numbers here)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value < _LATEST_TIME
    )


def _split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """The header, claims, signed part and signature of a JWT, unverified (to say what is wrong with it)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedToken(f"the token is {len(token)} characters; the limit is {MAX_TOKEN_CHARS}")
    if not token.isascii():
        raise MalformedToken("the token is not ASCII; a JWT is base64url parts joined by dots")
    parts = token.encode("ascii").split(b".")
    if len(parts) != 3:
        raise MalformedToken(f"a JWT has 3 dot-separated parts; this one has {len(parts)}")
    try:
        header = _json.loads(_b64(parts[0]), max_depth=_MAX_TOKEN_DEPTH, what="the token header")
        payload = _json.loads(_b64(parts[1]), max_depth=_MAX_TOKEN_DEPTH, what="the token claims")
        signature = _b64(parts[2])
    except _json.JSONError as exc:
        raise MalformedToken(str(exc)) from None
    except (ValueError, binascii.Error):
        raise MalformedToken("the token's parts are not base64url-encoded JSON") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise MalformedToken("the token's header and claims must be JSON objects")
    return header, payload, parts[0] + b"." + parts[1], signature


def _b64(part: bytes) -> bytes:
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))
