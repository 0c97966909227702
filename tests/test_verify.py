"""Token verification in the handler: each way a token can be wrong has its own error; genuine tokens
from the fake and the emulator pass."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit import verify
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.engine.tokens import TokenSigner
from cloudtasks_kit.transports.fake import FakeTransport

ACCOUNT = "tasks@test-project.iam.gserviceaccount.com"
AUDIENCE = "https://worker.test/run"


@pytest.fixture(scope="module")
def signer() -> TokenSigner:
    return TokenSigner()


@pytest.fixture
def verifier(signer: TokenSigner) -> verify.TokenVerifier:
    return verify.TokenVerifier(audience=AUDIENCE, service_accounts=[ACCOUNT], certs=signer.certs())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": ACCOUNT,
        "email_verified": True,
        "sub": "123",
        "iat": now,
        "exp": now + 3600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_genuine_token_passes(signer: TokenSigner, verifier: verify.TokenVerifier) -> None:
    token = signer.oidc_token(service_account_email=ACCOUNT, audience=AUDIENCE)
    result = verifier.verify(f"Bearer {token}")
    assert (result.email, result.audience, result.issuer) == (
        ACCOUNT,
        AUDIENCE,
        "https://accounts.google.com",
    )
    assert token not in repr(result)


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (None, verify.MissingToken),
        ("", verify.MissingToken),
        ("Basic dXNlcjpwYXNz", verify.NotBearer),
        ("Bearer", verify.NotBearer),
        ("Bearer not-a-jwt", verify.MalformedToken),
        ("Bearer a.b.c", verify.MalformedToken),
        ("Bearer " + b64({"alg": "RS256"}) + "." + "%%%" + ".x", verify.MalformedToken),
    ],
)
def test_broken_headers(verifier: verify.TokenVerifier, header: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        verifier.verify(header)


def test_a_tampered_token_has_a_bad_signature(signer: TokenSigner, verifier: verify.TokenVerifier) -> None:
    head, _, signature = signer.sign(claims()).split(".")
    forged = ".".join([head, b64(claims(email="evil@example.com")), signature])
    with pytest.raises(verify.BadSignature, match="does not verify"):
        verifier.verify_token(forged)


def test_a_token_signed_by_another_key_is_refused(verifier: verify.TokenVerifier) -> None:
    other = TokenSigner()
    with pytest.raises(verify.BadSignature, match="not among the certificates"):
        verifier.verify_token(other.sign(claims()))


def test_a_token_from_another_key_with_a_known_kid_is_refused(
    signer: TokenSigner, verifier: verify.TokenVerifier
) -> None:
    other = TokenSigner()
    token = other.sign(claims(), header={"kid": signer.key_id})
    with pytest.raises(verify.BadSignature, match="does not verify"):
        verifier.verify_token(token)


def test_alg_none_is_refused(verifier: verify.TokenVerifier) -> None:
    token = b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims()) + "."
    with pytest.raises(verify.BadSignature, match="'none' is not accepted"):
        verifier.verify_token(token)


def test_hs256_is_refused(verifier: verify.TokenVerifier) -> None:
    token = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims()) + ".c2ln"
    with pytest.raises(verify.BadSignature, match="HS256"):
        verifier.verify_token(token)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, verify.TokenExpired),
        ({"iat": int(time.time()) + 600, "exp": int(time.time()) + 4200}, verify.TokenNotYetValid),
        ({"iat": None}, verify.MalformedToken),
        ({"iss": "https://evil.example.com"}, verify.WrongIssuer),
        ({"aud": "https://someone-else.test"}, verify.WrongAudience),
        ({"email": "intruder@other.iam.gserviceaccount.com"}, verify.EmailNotAllowed),
        ({"email": None}, verify.EmailNotAllowed),
        ({"email_verified": False}, verify.EmailNotVerified),
        ({"email_verified": None}, verify.EmailNotVerified),
    ],
)
def test_wrong_claims(
    signer: TokenSigner, verifier: verify.TokenVerifier, overrides: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        verifier.verify_token(signer.sign(claims(**overrides)))


def test_a_little_clock_skew_is_allowed(signer: TokenSigner, verifier: verify.TokenVerifier) -> None:
    now = int(time.time())
    assert verifier.verify_token(signer.sign(claims(iat=now + 5, exp=now + 3605)))
    assert verifier.verify_token(signer.sign(claims(iat=now - 3605, exp=now - 5)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"service_accounts": [ACCOUNT]},
        {"audience": "", "service_accounts": [ACCOUNT]},
        {"audience": [], "service_accounts": [ACCOUNT]},
        {"audience": AUDIENCE},
        {"audience": AUDIENCE, "service_accounts": []},
        {"audience": AUDIENCE, "service_accounts": ["not-an-email"]},
    ],
)
def test_audience_and_service_accounts_cannot_be_left_out(kwargs: dict[str, Any]) -> None:
    with pytest.raises((kit.UsageError, TypeError)):
        verify.TokenVerifier(**kwargs)


def test_the_fakes_genuine_tokens_pass() -> None:
    fake = FakeTransport()
    tokens: list[str] = []
    fake.deliver_to(lambda dispatch: tokens.append(dispatch.headers["Authorization"]) or 200)
    queue = fake.client().queue("q")
    queue.create()
    queue.create_task(AUDIENCE, oidc=kit.OidcToken(service_account_email=ACCOUNT))
    fake.run_until_idle()
    verifier = verify.TokenVerifier(audience=AUDIENCE, service_accounts=[ACCOUNT], certs=fake.certs())
    assert verifier.verify(tokens[0]).email == ACCOUNT


def test_the_emulators_genuine_tokens_pass_with_its_certificate_url(emulator: Emulator) -> None:
    token = emulator.engine.signer.oidc_token(service_account_email=ACCOUNT, audience=AUDIENCE)
    verifier = verify.TokenVerifier(
        audience=AUDIENCE, service_accounts=[ACCOUNT], certs_url=emulator.certs_url
    )
    assert verifier.needs_fetch()
    assert verifier.verify("Bearer " + token).email == ACCOUNT
    assert not verifier.needs_fetch()


class CountingRequest:
    """A google.auth Request serving fixed certificates and counting fetches."""

    def __init__(self, certs: dict[str, str], max_age: int = 3600) -> None:
        self.certs = certs
        self.max_age = max_age
        self.fetches = 0

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        self.fetches += 1
        outer = self

        class Response:
            status = 200
            headers = {"Cache-Control": f"public, max-age={outer.max_age}"}
            data = json.dumps(outer.certs).encode()

        return Response()


def test_certificates_are_cached_and_refetched_for_an_unknown_key(signer: TokenSigner) -> None:
    request = CountingRequest(signer.certs())
    verifier = verify.TokenVerifier(audience=AUDIENCE, service_accounts=[ACCOUNT], request=request)
    token = signer.sign(claims())
    for _ in range(5):
        verifier.verify_token(token)
    assert request.fetches == 1
    with pytest.raises(verify.BadSignature):
        verifier.verify_token(TokenSigner().sign(claims()))
    with pytest.raises(verify.BadSignature):
        verifier.verify_token(TokenSigner().sign(claims()))
    assert request.fetches == 1  # an unknown key refetches at most once a minute
    verifier.certificates._fetched -= 61
    with pytest.raises(verify.BadSignature):
        verifier.verify_token(TokenSigner().sign(claims()))
    assert request.fetches == 2


def test_an_unreachable_certificate_url_is_an_auth_error(signer: TokenSigner) -> None:
    class Failing:
        def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
            class Response:
                status = 503
                headers: dict[str, str] = {}
                data = b""

            return Response()

    verifier = verify.TokenVerifier(audience=AUDIENCE, service_accounts=[ACCOUNT], request=Failing())
    with pytest.raises(verify.AuthError, match="HTTP 503"):
        verifier.verify_token(signer.sign(claims()))
