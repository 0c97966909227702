"""The certificate cache: single-flight fetches, a short timeout, a negative cache, HTTP caching, and a
verifier that turns every hostile token into an AuthError (never a TypeError or a RecursionError)."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import pytest

from cloudtasks_kit import verify
from cloudtasks_kit.certs import CertificateSource, SourceUnavailable, WouldBlock, _max_age
from cloudtasks_kit.engine.tokens import TokenSigner

ACCOUNT = "tasks@test-project.iam.gserviceaccount.com"
AUDIENCE = "https://worker.test/run"
URL = "https://certs.test/certs"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Response:
    def __init__(self, status: int = 200, data: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.data = data
        self.headers = headers or {}


class Certs:
    """A google.auth Request: answers what it is told, counts calls, can be held until released."""

    def __init__(self, answer: Response | Exception) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []
        self.gate: threading.Event | None = None

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Response:
        self.calls.append({"url": url, "method": method, **kwargs})
        if self.gate is not None:
            assert self.gate.wait(10)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture(scope="module")
def signer() -> TokenSigner:
    return TokenSigner()


def ok(signer: TokenSigner, max_age: int = 3600) -> Response:
    return Response(200, json.dumps(signer.certs()).encode(), {"Cache-Control": f"public, max-age={max_age}"})


def test_concurrent_waiters_share_one_fetch(signer: TokenSigner) -> None:
    request = Certs(ok(signer))
    request.gate = threading.Event()
    source = CertificateSource(URL, request=request)
    results: list[str | None] = []

    def ask() -> None:
        results.append(source.get(signer.key_id))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while source.stats.shared_waits < 7 and time.monotonic() < deadline:
        time.sleep(0.01)
    request.gate.set()
    for thread in threads:
        thread.join(10)
    assert source.stats.fetches == 1 and len(request.calls) == 1
    assert source.stats.shared_waits == 7
    assert results == [signer.certs()[signer.key_id]] * 8


def test_fetches_use_the_short_timeout(signer: TokenSigner) -> None:
    request = Certs(ok(signer))
    CertificateSource(URL, request=request, timeout=2.5).get(signer.key_id)
    assert request.calls[0]["timeout"] == 2.5


@pytest.mark.parametrize(
    ("answer", "cause"),
    [
        (Response(503), "HTTP 503"),
        (Response(200, b"<html>down</html>"), "not JSON"),
        (Response(200, b"[" * 5000), "not JSON"),
        (Response(200, b'{"keys": []}'), "JWKS"),
        (Response(200, b'{"k": "not a certificate"}'), "not a PEM certificate"),
        (ConnectionRefusedError("refused"), "ConnectionRefusedError"),
        (TimeoutError("timed out"), "TimeoutError"),
    ],
)
def test_failures_are_reported_and_cached_briefly(answer: Response | Exception, cause: str) -> None:
    clock = Clock()
    request = Certs(answer)
    source = CertificateSource(URL, request=request, failure_ttl=10, clock=clock)
    with pytest.raises(SourceUnavailable, match=cause) as first:
        source.get("k")
    assert first.value.retry_after == 10
    clock.now += 4
    for _ in range(5):
        with pytest.raises(SourceUnavailable, match=cause) as again:
            source.get("k")
    assert again.value.retry_after == 6
    assert (source.stats.fetches, source.stats.failures, source.stats.negative_hits) == (1, 1, 5)
    clock.now += 7  # the failure is 11 s old: try again
    with pytest.raises(SourceUnavailable):
        source.get("k")
    assert source.stats.fetches == 2


def test_a_recovered_server_is_used_after_the_negative_cache(signer: TokenSigner) -> None:
    clock = Clock()
    request = Certs(Response(500))
    source = CertificateSource(URL, request=request, failure_ttl=10, clock=clock)
    with pytest.raises(SourceUnavailable):
        source.get(signer.key_id)
    request.answer = ok(signer)
    clock.now += 10
    assert source.get(signer.key_id) == signer.certs()[signer.key_id]


def test_known_keys_keep_verifying_when_a_refresh_fails(signer: TokenSigner) -> None:
    clock = Clock()
    request = Certs(ok(signer, max_age=300))
    source = CertificateSource(URL, request=request, clock=clock)
    assert source.get(signer.key_id)
    clock.now += 301
    request.answer = Response(503)
    assert source.get(signer.key_id) == signer.certs()[signer.key_id]  # stale-if-error
    with pytest.raises(SourceUnavailable):
        source.get("another-key")


def test_successes_are_cached_for_max_age_and_unknown_keys_refetch_once_a_minute(signer: TokenSigner) -> None:
    clock = Clock()
    request = Certs(ok(signer, max_age=600))
    source = CertificateSource(URL, request=request, clock=clock)
    for _ in range(3):
        source.get(signer.key_id)
    assert source.get("unknown") is None
    assert source.stats.fetches == 1
    clock.now += 61
    assert source.get("unknown") is None
    assert source.stats.fetches == 2
    clock.now += 599
    assert source.get(signer.key_id)
    assert source.stats.fetches == 2
    clock.now += 2
    source.get(signer.key_id)
    assert source.stats.fetches == 3


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, 3600),
        ({"Cache-Control": "public, max-age=19800, must-revalidate"}, 19800),
        ({"cache-control": "max-age=19800", "Age": "800"}, 19000),
        ({"Cache-Control": "no-cache, max-age=0"}, 60),
        ({"Cache-Control": "max-age=99999999"}, 86400),
        ({"Cache-Control": "max-age=600", "Age": "²"}, 600),
    ],
)
def test_max_age(headers: dict[str, str], seconds: float) -> None:
    assert _max_age(headers) == seconds


def test_a_caller_that_must_not_block_is_told_so(signer: TokenSigner) -> None:
    request = Certs(ok(signer))
    source = CertificateSource(URL, request=request)
    assert source.needs_fetch(signer.key_id)
    with pytest.raises(WouldBlock):
        source.get(signer.key_id, may_block=False)
    assert request.calls == []
    source.get(signer.key_id)
    assert not source.needs_fetch(signer.key_id)
    assert source.get(signer.key_id, may_block=False)


# The verifier, with the default set-up (a certs URL), on hostile tokens.


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": ACCOUNT,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
    }


def token_with(header: bytes, payload: bytes | None = None) -> str:
    return b64(header) + "." + b64(payload or json.dumps(claims()).encode()) + "." + b64(b"sig")


@pytest.fixture
def url_verifier(signer: TokenSigner) -> verify.TokenVerifier:
    return verify.TokenVerifier(audience=AUDIENCE, service_accounts=[ACCOUNT], request=Certs(ok(signer)))


HOSTILE = [
    token_with(b'{"alg": "RS256", "kid": ["a", "b"]}'),
    token_with(b'{"alg": "RS256", "kid": {"url": "https://evil.test"}}'),
    token_with(b'{"alg": "RS256", "kid": 12}'),
    token_with(b'{"alg": "RS256", "kid": null}'),
    token_with(b'{"alg": "RS256", "kid": ""}'),
    token_with(b'{"alg": ["RS256"], "kid": "k"}'),
    token_with(b'{"alg": {"x": 1}, "kid": "k"}'),
    token_with(b"[" * 5000 + b"]" * 5000),
    token_with(b'{"alg": "RS256", "kid": "k", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    token_with(b'{"alg": "RS256", "kid": "k"}', b"{" * 3000),
    token_with(b'{"alg": "RS256", "kid": "k"}', b'{"a":' * 3000 + b"1" + b"}" * 3000),
    token_with(b'{"alg": "RS256", "kid": "k"}', b"\xff\xfe"),
    token_with(b"\x00\x01"),
    token_with(b'"just a string"'),
    "é.é.é",
    "a" * 100_000,
    "a.b.c.d",
]


@pytest.mark.parametrize("token", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_tokens_are_auth_errors(url_verifier: verify.TokenVerifier, token: str) -> None:
    with pytest.raises(verify.AuthError) as refused:
        url_verifier.verify("Bearer " + token)
    assert not isinstance(refused.value, verify.CertificatesUnavailable)
    assert len(str(refused.value)) < 300


def test_a_megabyte_kid_writes_a_short_message(url_verifier: verify.TokenVerifier) -> None:
    token = token_with(json.dumps({"alg": "RS256", "kid": "k" * 1_000_000}).encode())
    with pytest.raises(verify.AuthError) as refused:
        url_verifier.verify_token(token)
    assert len(str(refused.value)) < 300


@pytest.mark.parametrize(
    "times",
    [
        {"iat": True, "exp": True},
        {"iat": 1e300, "exp": 1e300},
        {"iat": -1, "exp": 10**30},
        {"iat": "now", "exp": "later"},
    ],
)
def test_nonsense_times_are_malformed_even_when_signed(signer: TokenSigner, times: dict[str, Any]) -> None:
    verifier = verify.TokenVerifier(audience=AUDIENCE, service_accounts=[ACCOUNT], certs=signer.certs())
    with pytest.raises(verify.MalformedToken):
        verifier.verify_token(signer.sign({**claims(), **times}))


def test_infinite_times_are_malformed(signer: TokenSigner) -> None:
    verifier = verify.TokenVerifier(audience=AUDIENCE, service_accounts=[ACCOUNT], certs=signer.certs())
    header = json.dumps({"alg": "RS256", "kid": signer.key_id}).encode()
    payload = json.dumps(claims()).replace(str(claims()["exp"]), "Infinity").encode()
    with pytest.raises(verify.AuthError):
        verifier.verify_token(token_with(header, payload))


def test_unavailable_certificates_are_their_own_auth_error(signer: TokenSigner) -> None:
    verifier = verify.TokenVerifier(
        audience=AUDIENCE, service_accounts=[ACCOUNT], request=Certs(ConnectionRefusedError("refused"))
    )
    with pytest.raises(verify.CertificatesUnavailable) as down:
        verifier.verify("Bearer " + signer.sign(claims()))
    assert down.value.retry_after >= 1
    assert "ConnectionRefusedError" in str(down.value)


@pytest.mark.parametrize(
    "kwargs", [{"fetch_timeout": 0}, {"fetch_timeout": float("nan")}, {"failure_ttl": -1}]
)
def test_fetch_settings_are_checked(kwargs: dict[str, float]) -> None:
    from cloudtasks_kit import UsageError

    with pytest.raises(UsageError):
        verify.TokenVerifier(audience=AUDIENCE, service_accounts=[ACCOUNT], **kwargs)  # type: ignore[arg-type]
