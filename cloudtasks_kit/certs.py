"""The signing certificates a handler verifies tokens with: fetched, cached, and never a reason to hang.

:class:`CertificateSource` holds the ``{kid: PEM certificate}`` map published at a URL (Google's
``https://www.googleapis.com/oauth2/v1/certs``, or the emulator's) and answers "which certificate has this
key id?". How it behaves when many requests ask at once, or when the URL is slow or down:

- **one fetch at a time** (single-flight): concurrent requests that need certificates wait for the one
  fetch under way and share its result, instead of queueing a fetch each;
- **a short timeout** (5 seconds by default, not google-auth's 120), so a hung certs server costs a
  request seconds, not minutes;
- **failures are remembered briefly** (negative cache, 10 seconds by default): while a failure is fresh,
  requests are answered at once from it (the handler answers 503 with ``Retry-After``) rather than each
  refetching from a server that is down;
- **successes are cached** for the response's ``Cache-Control: max-age`` (minus ``Age``), clamped to
  between one minute and one day, an hour when the response says nothing; if a refresh fails, the
  certificates already held keep verifying the keys they know (stale-if-error);
- **an unknown key id** refetches early, at most once a minute, so random ``kid`` values cannot make the
  handler hammer the certs server;
- **callers that must not block** (the ASGI handler on its event loop) ask with ``may_block=False`` and
  get :class:`WouldBlock` when answering needs I/O, then ask again from a worker thread.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._redact import redact_url, shorten

__all__ = ["CertStats", "CertificateSource", "SourceUnavailable", "WouldBlock"]

DEFAULT_TIMEOUT = 5.0
DEFAULT_FAILURE_TTL = 10.0
DEFAULT_MAX_AGE = 3600.0
MIN_MAX_AGE = 60.0
MAX_MAX_AGE = 86400.0
MIN_REFETCH = 60.0
MAX_CERTS_BYTES = 1024 * 1024
MAX_CERTS = 100
_PEM = "-----BEGIN CERTIFICATE-----"


class SourceUnavailable(Exception):
    """The certificates could not be had (the verifier turns this into ``CertificatesUnavailable``).

    Attributes:
        retry_after: seconds until the next fetch will be tried.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WouldBlock(Exception):
    """Answering needs a fetch (or a wait for one): ask again where blocking is allowed."""


@dataclasses.dataclass
class CertStats:
    """Counters, for tests and metrics: what the source did, not what it was asked."""

    fetches: int = 0
    failures: int = 0
    negative_hits: int = 0
    shared_waits: int = 0


@dataclasses.dataclass(frozen=True)
class _Failure:
    at: float
    cause: str


class CertificateSource:
    """The certificates published at ``url``, cached; see the module docstring for the rules.

    Args:
        url: where the ``{kid: PEM certificate}`` map is.
        request: a ``google.auth.transport.Request`` (google-auth's requests transport by default).
        timeout: seconds a fetch may take before it counts as failed.
        failure_ttl: seconds a failed fetch is remembered (and answered from) before the next try.
        clock: a monotonic clock in seconds (tests inject one).
    """

    def __init__(
        self,
        url: str,
        *,
        request: Callable[..., Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        failure_ttl: float = DEFAULT_FAILURE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0 or failure_ttl < 0:
            raise ValueError(
                f"CertificateSource timeout={timeout!r} must be > 0 and failure_ttl={failure_ttl!r} >= 0"
            )
        self.url = url
        self.timeout = timeout
        self.failure_ttl = failure_ttl
        self.stats = CertStats()
        self._request = request
        self._clock = clock
        self._certs: dict[str, str] = {}
        self._expires = float("-inf")
        self._fetched = float("-inf")
        self._failure: _Failure | None = None
        self._inflight: threading.Event | None = None
        self._lock = threading.Lock()

    def needs_fetch(self, kid: object = None) -> bool:
        """True if answering for ``kid`` (or for any key, with None) would fetch or wait for a fetch."""
        with self._lock:
            return self._plan(kid, self._clock()) == "fetch"

    def get(self, kid: str, *, may_block: bool = True) -> str | None:
        """The certificate for ``kid``; None if the source does not have it.

        Raises:
            SourceUnavailable: the certificates could not be fetched (or a recent failure stands).
            WouldBlock: ``may_block`` is False and answering needs a fetch.
        """
        with self._lock:
            now = self._clock()
            plan = self._plan(kid, now)
            if plan == "answer":
                return self._certs.get(kid)
            if plan == "failed":
                self.stats.negative_hits += 1
                return self._from_failure(kid, now)
            if not may_block:
                raise WouldBlock(kid)
            leader = self._inflight is None
            if leader:
                event = self._inflight = threading.Event()
            else:
                event = self._inflight  # type: ignore[assignment]
                self.stats.shared_waits += 1
        if leader:
            self._refresh(event)
        else:
            # Wait for the fetch under way; it cannot take much longer than its own timeout.
            event.wait(self.timeout + 1.0)
        with self._lock:
            now = self._clock()
            if not event.is_set():
                if kid in self._certs:
                    return self._certs[kid]
                raise SourceUnavailable(
                    f"the signing certificates at {redact_url(self.url)} are still being fetched after "
                    f"{self.timeout + 1.0:.0f} s",
                    max(1.0, self.failure_ttl),
                )
            if self._failure is not None:  # the fetch just made failed
                return self._from_failure(kid, now)
            return self._certs.get(kid)

    # Inside the lock.

    def _plan(self, kid: object, now: float) -> str:
        """``answer`` from the cache, ``failed`` from a fresh failure, or ``fetch``."""
        fresh = now < self._expires
        if fresh and (kid is None or kid in self._certs or now - self._fetched < MIN_REFETCH):
            return "answer"
        if self._failure is not None and now - self._failure.at < self.failure_ttl:
            return "failed"
        return "fetch"

    def _from_failure(self, kid: str, now: float) -> str | None:
        assert self._failure is not None
        if kid in self._certs and now - self._expires < MAX_MAX_AGE:
            # Stale-if-error: a key we hold is still a key the issuer signed with; a day at most.
            return self._certs[kid]
        retry_after = max(1.0, self.failure_ttl - (now - self._failure.at))
        raise SourceUnavailable(
            f"the signing certificates at {redact_url(self.url)} are unavailable: {self._failure.cause}",
            retry_after,
        )

    # The fetch, outside the lock.

    def _refresh(self, event: threading.Event) -> None:
        try:
            certs, max_age = self._fetch()
        except Exception as exc:
            cause = _describe(exc)
            with self._lock:
                self.stats.failures += 1
                self._failure = _Failure(self._clock(), cause)
                self._inflight = None
            event.set()
            return
        with self._lock:
            now = self._clock()
            self._certs = certs
            self._fetched = now
            self._expires = now + max_age
            self._failure = None
            self._inflight = None
        event.set()

    def _fetch(self) -> tuple[dict[str, str], float]:
        request = self._request
        if request is None:
            from google.auth.transport.requests import Request

            request = self._request = Request()
        with self._lock:
            self.stats.fetches += 1
        response = request(self.url, method="GET", timeout=self.timeout)
        status = getattr(response, "status", None)
        if status != 200:
            raise _FetchError(f"HTTP {shorten(status, 20)}")
        data = response.data
        if len(data) > MAX_CERTS_BYTES:
            raise _FetchError(f"the answer is {len(data)} bytes, over the {MAX_CERTS_BYTES}-byte limit")
        try:
            certs = json.loads(data)
        except (ValueError, RecursionError):
            raise _FetchError("the answer is not JSON") from None
        return _check_map(certs), _max_age(getattr(response, "headers", None) or {})


class _FetchError(Exception):
    """What went wrong with a fetch, in words fit for a log line."""


def _describe(exc: Exception) -> str:
    if isinstance(exc, _FetchError):
        return str(exc)
    # A transport error (timeout, refused connection, DNS): its type says most; its text may be long.
    return f"{type(exc).__name__}: {shorten(str(exc), 160)[1:-1]}"


def _check_map(certs: object) -> dict[str, str]:
    if not isinstance(certs, dict) or "keys" in certs:
        raise _FetchError("the answer is not a {kid: PEM certificate} map (a JWKS is not supported)")
    if not certs or len(certs) > MAX_CERTS:
        raise _FetchError(f"the answer has {len(certs)} certificates; 1 to {MAX_CERTS} expected")
    checked: dict[str, str] = {}
    for kid, pem in certs.items():
        if not isinstance(pem, str) or not pem.lstrip().startswith(_PEM):
            raise _FetchError(f"the certificate for key {shorten(kid, 40)} is not a PEM certificate")
        checked[kid] = pem
    return checked


def _max_age(headers: Mapping[str, str]) -> float:
    """How long a response may be cached: ``max-age`` minus ``Age``, clamped to [1 minute, 1 day]."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    control = lowered.get("cache-control", "")
    match = re.search(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,10})", control, re.IGNORECASE)
    if match is None:
        return DEFAULT_MAX_AGE
    age = lowered.get("age", "").strip()
    seconds = float(match.group(1)) - (float(age) if age.isascii() and age.isdigit() and len(age) < 11 else 0)
    return min(MAX_MAX_AGE, max(MIN_MAX_AGE, seconds))
