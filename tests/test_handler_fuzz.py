"""Fuzz the WSGI and ASGI faces: whatever the token, headers, body and size, the kit answers no 5xx of
its own and runs the task function only for an authenticated, well-formed request.

Each example is sent to both faces. The default run is small (200 examples); run it big with
``CLOUDTASKS_FUZZ_EXAMPLES=10000 pytest tests/test_handler_fuzz.py -s`` (the tally is printed at the end).
"""

from __future__ import annotations

import base64
import collections
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cloudtasks_kit as kit
from cloudtasks_kit.engine.tokens import TokenSigner

from .handler_support import ACCOUNT, BASE, AsgiBody, CountingStream, call_wsgi, job_app, run_asgi

EXAMPLES = int(os.environ.get("CLOUDTASKS_FUZZ_EXAMPLES", "200"))
CAP = 2048

SIGNER = TokenSigner()
STRANGER = TokenSigner()


class Certs:
    """An in-process certificates endpoint (google.auth Request): the URL set-up without a network."""

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        class Response:
            status = 200
            headers = {"Cache-Control": "max-age=3600"}
            data = json.dumps(SIGNER.certs()).encode()

        return Response()


APP, CALLS = job_app()
VERIFIER = kit.TokenVerifier(audience=BASE, service_accounts=[ACCOUNT], request=Certs())
HANDLER = kit.TaskHandler(APP, verifier=VERIFIER, max_body_bytes=CAP)
TALLY: collections.Counter[str] = collections.Counter()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def good_claims() -> dict[str, Any]:
    return json.loads(
        base64.urlsafe_b64decode(
            _pad(SIGNER.oidc_token(service_account_email=ACCOUNT, audience=BASE).split(".")[1])
        )
    )


def _pad(part: str) -> str:
    return part + "=" * (-len(part) % 4)


JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
KID = st.one_of(
    st.just(SIGNER.key_id),
    st.text(max_size=30),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.integers(),
    st.none(),
    st.integers(min_value=257, max_value=5000).map(lambda n: "k" * n),
)
DEEP = st.integers(min_value=1, max_value=6000).map(lambda n: b"[" * n + b"]" * n)


@st.composite
def hostile_jwt(draw: st.DrawFn) -> str:
    header: Any = {"alg": draw(st.sampled_from(["RS256", "none", "HS256", "", "rs256"])), "kid": draw(KID)}
    if draw(st.booleans()):
        header = draw(st.one_of(JSON_VALUE, st.just(header)))
    header_bytes = (
        json.dumps(header).encode()
        if not draw(st.booleans())
        else draw(st.one_of(DEEP, st.binary(max_size=30)))
    )
    claims: Any = draw(st.one_of(st.just(good_claims()), JSON_VALUE))
    claims_bytes = (
        json.dumps(claims).encode()
        if not draw(st.booleans())
        else draw(st.one_of(DEEP, st.binary(max_size=30)))
    )
    signature = draw(st.one_of(st.just(b"sig"), st.binary(max_size=300)))
    return ".".join([b64(header_bytes), b64(claims_bytes), b64(signature)])


# (kind, Authorization value or None): only "valid" may ever run the function.
TOKENS = st.one_of(
    st.just(("valid", None)),  # three times: enough authenticated requests to reach the later checks
    st.just(("valid", None)),
    st.just(("valid", None)),
    st.just(("none", None)),
    st.builds(
        lambda: ("other-key", "Bearer " + STRANGER.oidc_token(service_account_email=ACCOUNT, audience=BASE))
    ),
    st.builds(
        lambda: (
            "wrong-audience",
            "Bearer " + SIGNER.oidc_token(service_account_email=ACCOUNT, audience="https://elsewhere.test"),
        )
    ),
    hostile_jwt().map(lambda t: ("hostile", "Bearer " + t)),
    st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=60).map(lambda t: ("text", t)),
    st.builds(
        lambda: (
            "tampered",
            "Bearer " + SIGNER.oidc_token(service_account_email=ACCOUNT, audience=BASE)[:-4] + "AAAA",
        )
    ),
)

HEADER_VALUE = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30),
    st.integers(min_value=0, max_value=10**12).map(str),
    st.sampled_from(["²", "٣", "-1", "1e400", "nan", "inf", "0x1f", " 7 ", "9" * 5000, "1700000000.25"]),
)
CLOUDTASKS_HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "X-CloudTasks-TaskRetryCount",
            "X-CloudTasks-TaskExecutionCount",
            "X-CloudTasks-TaskETA",
            "X-CloudTasks-TaskPreviousResponse",
            "X-CloudTasks-TaskRetryReason",
            "X-CloudTasks-TaskName",
            "X-CloudTasks-QueueName",
            "X-Api-Key",
            "Cookie",
        ]
    ),
    HEADER_VALUE,
    max_size=4,
)


def envelope(version: Any, task: Any, args: Any) -> bytes:
    return json.dumps({"v": version, "task": task, "args": args}).encode()


BODIES = st.one_of(
    st.builds(envelope, st.just(1), st.just("job"), st.fixed_dictionaries({"n": st.integers()})),
    st.builds(
        envelope,
        st.one_of(st.just(1), JSON_VALUE),
        st.one_of(st.just("job"), st.text(max_size=8), JSON_VALUE),
        st.one_of(st.fixed_dictionaries({"n": JSON_VALUE}), JSON_VALUE),
    ),
    st.binary(max_size=200),
    DEEP,
    st.integers(min_value=0, max_value=3 * CAP).map(
        lambda n: b'{"v": 1, "task": "job", "args": {"n": 1}}' + b" " * n
    ),
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    kind, authorization = draw(TOKENS)
    if kind == "valid":
        authorization = "Bearer " + SIGNER.oidc_token(service_account_email=ACCOUNT, audience=BASE)
    headers = dict(draw(st.one_of(st.just({}), CLOUDTASKS_HEADERS)))
    if authorization is not None:
        headers["Authorization"] = authorization
    body = draw(BODIES)
    length = draw(
        st.one_of(
            st.just(str(len(body))),
            st.none(),  # chunked
            st.sampled_from(["", "abc", "-1", "²", str(10**30), str(CAP * 100)]),
        )
    )
    return {
        "kind": kind,
        "method": draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT"])),
        "path": draw(st.one_of(st.just("/tasks/job"), st.just("/tasks/job/"), st.text(max_size=20))),
        "headers": headers,
        "body": body,
        "length": length,
    }


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[None]:
    yield
    print(f"\nhandler fuzz, {EXAMPLES} examples per face: {dict(sorted(TALLY.items()))}")


def check(face: str, request: dict[str, Any], status: int) -> None:
    ran = len(CALLS)
    CALLS.clear()
    TALLY[f"{face} requests"] += 1
    TALLY[f"{face} {status // 100}xx"] += 1
    if ran and request["kind"] != "valid":
        TALLY[f"{face} ran on invalid input"] += 1
    assert status < 500, (face, status, request)
    assert not (ran and request["kind"] != "valid"), (face, request)
    assert (status == 200) == (ran == 1), (face, status, ran, request)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
@given(request=requests())
def test_no_input_makes_either_face_answer_5xx_or_run_the_function_unauthenticated(
    request: dict[str, Any],
) -> None:
    CALLS.clear()
    wsgi = call_wsgi(
        HANDLER,
        method=request["method"],
        path=request["path"],
        headers=request["headers"],
        stream=CountingStream(request["body"]),
        content_length=request["length"],
        terminated=request["length"] is None,
    )
    check("wsgi", request, wsgi.status)
    asgi_headers = {k.lower(): v for k, v in request["headers"].items()}
    if request["length"] is not None:
        asgi_headers["content-length"] = request["length"]
    body = request["body"]
    chunks = [body[i : i + 500] for i in range(0, len(body), 500)] or [b""]
    asgi = run_asgi(
        HANDLER,
        method=request["method"],
        path=request["path"],
        headers=asgi_headers,
        receive=AsgiBody(chunks),
    )
    assert asgi is not None
    check("asgi", request, asgi.status)
