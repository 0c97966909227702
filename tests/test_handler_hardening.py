"""The handler before and after authentication: every bad input is a 4xx (or a 503 when certificates
are down), never a 500 from the kit's own code; the body is read only after authentication, and no more
of it than the limit; a slow certs server holds up only the requests that need it."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from typing import Any

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit.engine.tokens import TokenSigner

from .handler_support import (
    ACCOUNT,
    BASE,
    ENVELOPE,
    AsgiBody,
    CertsServer,
    CountingStream,
    bearer,
    call_asgi,
    call_wsgi,
    closed_port_url,
    job_app,
    run_asgi,
)


@pytest.fixture(scope="module")
def signer() -> TokenSigner:
    return TokenSigner()


@pytest.fixture
def app_calls() -> tuple[kit.TaskApp, list[int]]:
    return job_app()


@pytest.fixture
def handler(app_calls: tuple[kit.TaskApp, list[int]], signer: TokenSigner) -> kit.TaskHandler:
    return kit.TaskHandler(app_calls[0], certs=signer.certs(), max_body_bytes=16384)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Before authentication: the body is not touched.


def test_an_unauthenticated_wsgi_request_is_refused_without_reading_its_body(
    handler: kit.TaskHandler, app_calls: tuple[kit.TaskApp, list[int]]
) -> None:
    stream = CountingStream(size=300 * 1024 * 1024)
    answer = call_wsgi(handler, stream=stream, content_length=str(stream.size))
    assert answer.status == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    assert stream.read_bytes == 0
    assert app_calls[1] == []


def test_an_unauthenticated_asgi_request_is_refused_without_receiving_its_body(
    handler: kit.TaskHandler,
) -> None:
    receive = AsgiBody([b"x" * 65536] * 5000)
    answer = run_asgi(handler, headers={"content-length": str(65536 * 5000)}, receive=receive)
    assert answer is not None and answer.status == 401
    assert receive.taken == 0


def test_a_wrong_method_is_refused_before_anything_else(handler: kit.TaskHandler) -> None:
    stream = CountingStream(ENVELOPE)
    answer = call_wsgi(handler, method="GET", stream=stream, content_length=str(len(ENVELOPE)))
    assert (answer.status, answer.headers["Allow"], stream.read_bytes) == (405, "POST", 0)


# After authentication: the body limit.


def test_a_declared_length_over_the_limit_is_413_without_reading(
    handler: kit.TaskHandler, signer: TokenSigner
) -> None:
    stream = CountingStream(size=20_000)
    answer = call_wsgi(
        handler, headers={"Authorization": bearer(signer)}, stream=stream, content_length="20000"
    )
    assert answer.status == 413 and "16384" in answer.json()["error"]
    assert stream.read_bytes == 0


def test_a_chunked_wsgi_body_stops_being_read_past_the_limit(
    handler: kit.TaskHandler, signer: TokenSigner
) -> None:
    stream = CountingStream(size=50 * 1024 * 1024)
    answer = call_wsgi(handler, headers={"Authorization": bearer(signer)}, stream=stream, terminated=True)
    assert answer.status == 413
    assert stream.read_bytes <= 16384 + 64 * 1024  # one chunk past the limit at most


def test_a_chunked_wsgi_body_within_the_limit_runs(
    handler: kit.TaskHandler, signer: TokenSigner, app_calls: tuple[kit.TaskApp, list[int]]
) -> None:
    answer = call_wsgi(
        handler, headers={"Authorization": bearer(signer)}, stream=CountingStream(ENVELOPE), terminated=True
    )
    assert answer.status == 200 and app_calls[1] == [1]


def test_an_asgi_body_stops_being_received_past_the_limit(
    handler: kit.TaskHandler, signer: TokenSigner
) -> None:
    receive = AsgiBody([b"x" * 1024] * 1000)  # no Content-Length: chunked
    answer = run_asgi(handler, headers={"authorization": bearer(signer)}, receive=receive)
    assert answer is not None and answer.status == 413
    assert receive.taken == 17


def test_an_asgi_declared_length_over_the_limit_is_413_without_receiving(
    handler: kit.TaskHandler, signer: TokenSigner
) -> None:
    receive = AsgiBody([b"x" * 20_000])
    answer = run_asgi(
        handler, headers={"authorization": bearer(signer), "content-length": "20000"}, receive=receive
    )
    assert answer is not None and answer.status == 413 and receive.taken == 0


def test_an_asgi_body_longer_than_declared_is_400(handler: kit.TaskHandler, signer: TokenSigner) -> None:
    answer = run_asgi(
        handler,
        headers={"authorization": bearer(signer), "content-length": "10"},
        receive=AsgiBody([ENVELOPE]),
    )
    assert answer is not None and answer.status == 400


def test_handle_applies_the_limit_to_a_body_already_read(
    handler: kit.TaskHandler, signer: TokenSigner
) -> None:
    answer = handler.handle("POST", "/tasks/job", {"Authorization": bearer(signer)}, b" " * 20_000)
    assert answer.status == 413


@pytest.mark.parametrize("length", ["abc", "-1", "1.5", "²", "1" * 40, "0x10"])
def test_a_malformed_content_length_is_400_or_413(
    handler: kit.TaskHandler, signer: TokenSigner, length: str
) -> None:
    answer = call_wsgi(
        handler,
        headers={"Authorization": bearer(signer)},
        stream=CountingStream(ENVELOPE),
        content_length=length,
    )
    assert answer.status in (400, 413)


def test_the_default_limit_is_the_task_size_limit(app_calls: tuple[kit.TaskApp, list[int]]) -> None:
    handler = kit.TaskHandler(app_calls[0], verify=False)
    assert handler.max_body_bytes == kit.Limits().max_task_bytes
    client = kit.testing.FakeTransport().client(limits=kit.Limits(max_task_bytes=2048))
    app_calls[0].bind(client)
    assert kit.TaskHandler(app_calls[0], verify=False).max_body_bytes == 2048


@pytest.mark.parametrize("kwargs", [{"max_body_bytes": 0}, {"max_json_depth": 0}, {"max_json_depth": 10_000}])
def test_limits_are_checked(app_calls: tuple[kit.TaskApp, list[int]], kwargs: dict[str, int]) -> None:
    with pytest.raises(kit.UsageError):
        kit.TaskHandler(app_calls[0], verify=False, **kwargs)  # type: ignore[arg-type]


# After authentication: bad input is a 4xx, and the function never runs.

DEEP_1000 = b'{"v": 1, "task": "job", "args": {"n": ' + b"[" * 1000 + b"]" * 1000 + b"}}"
DEEP_5000 = b"[" * 5000 + b"]" * 5000


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (DEEP_1000, {}, 400),
        (DEEP_5000, {}, 400),
        (b'{"v": 1, "task": "job", "args": {"n": "\xff"}}', {}, 400),
        (ENVELOPE, {"X-CloudTasks-TaskRetryCount": "²"}, 400),
        (ENVELOPE, {"X-CloudTasks-TaskRetryCount": "9" * 5000}, 400),
        (ENVELOPE, {"X-CloudTasks-TaskExecutionCount": "-3"}, 400),
        (ENVELOPE, {"X-CloudTasks-TaskETA": "nan"}, 400),
        (ENVELOPE, {"X-CloudTasks-TaskETA": "1e400"}, 400),
        (ENVELOPE, {"X-CloudTasks-TaskPreviousResponse": "5000"}, 400),
        (ENVELOPE, {"X-CloudTasks-TaskName": "a/b"}, 400),
        (ENVELOPE, {"X-CloudTasks-QueueName": "q" * 101}, 400),
        (b'{"v": 1, "task": "' + b"j" * 3000 + b'", "args": {}}', {}, 400),
        (b'{"v": 1, "task": "job", "args": {"n": 1, "' + b"k" * 3000 + b'": 1}}', {}, 422),
    ],
)
@pytest.mark.parametrize("face", ["handle", "wsgi", "asgi"])
def test_bad_input_after_authentication_is_a_4xx(
    handler: kit.TaskHandler,
    signer: TokenSigner,
    app_calls: tuple[kit.TaskApp, list[int]],
    caplog: pytest.LogCaptureFixture,
    face: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    headers = {"Authorization": bearer(signer), **headers}
    if face == "handle":
        answer: Any = handler.handle("POST", "/tasks/job", headers, body)
    elif face == "wsgi":
        answer = call_wsgi(
            handler, headers=headers, stream=CountingStream(body), content_length=str(len(body))
        )
    else:
        answer = run_asgi(handler, headers=headers, receive=AsgiBody([body]))
    assert answer.status == status, answer.body
    assert app_calls[1] == []
    assert all(len(record.getMessage()) < 1000 for record in caplog.records)


def test_good_counts_still_reach_the_context(handler: kit.TaskHandler, signer: TokenSigner) -> None:
    seen: list[kit.TaskContext] = []

    @handler.app.task
    def probe() -> None:
        seen.append(kit.task_context())

    headers = {
        "Authorization": bearer(signer),
        "X-CloudTasks-TaskRetryCount": "3",
        "X-CloudTasks-TaskExecutionCount": "2",
        "X-CloudTasks-TaskETA": "1700000000.5",
        "X-CloudTasks-TaskPreviousResponse": "503",
        "X-CloudTasks-TaskRetryReason": "",
        "X-CloudTasks-TaskName": "t-1",
        "X-CloudTasks-QueueName": "default",
    }
    body = b'{"v": 1, "task": "probe", "args": {}}'
    assert handler.handle("POST", "/tasks/probe", headers, body).status == 200
    context = seen[0]
    assert (context.retry_count, context.execution_count, context.previous_response) == (3, 2, 503)
    assert context.eta is not None and context.eta.timestamp() == 1700000000.5
    assert (context.task_id, context.queue, context.retry_reason) == ("t-1", "default", "")


def test_the_lenient_reader_survives_unicode_digits_and_huge_numbers() -> None:
    context = kit.TaskContext.from_headers(
        {"X-CloudTasks-TaskRetryCount": "²", "X-CloudTasks-TaskExecutionCount": "9" * 5000}
    )
    assert (context.retry_count, context.execution_count) == (0, 0)


# Hostile tokens with the default set-up (a certs URL, here a local server).


def hostile_tokens(signer: TokenSigner) -> list[str]:
    claims = b64(json.dumps({"aud": BASE}).encode())
    return [
        b64(b'{"alg": "RS256", "kid": ["a", "b"]}') + "." + claims + ".c2ln",
        b64(b'{"alg": "RS256", "kid": {"certs": "https://evil.test"}}') + "." + claims + ".c2ln",
        b64(b"[" * 5000 + b"]" * 5000) + "." + claims + ".c2ln",
        b64(b'{"alg": "RS256", "kid": "k"}') + "." + b64(b"{" * 5000) + ".c2ln",
        b64(json.dumps({"alg": "RS256", "kid": "k" * 1_000_000}).encode()) + "." + claims + ".c2ln",
        signer.sign({"aud": BASE, "iat": True, "exp": 1e300, "email": ACCOUNT, "email_verified": True}),
    ]


def test_hostile_tokens_are_401_with_short_log_lines(
    app_calls: tuple[kit.TaskApp, list[int]], signer: TokenSigner, caplog: pytest.LogCaptureFixture
) -> None:
    with CertsServer(json.dumps(signer.certs()).encode()) as server:
        verifier = kit.TokenVerifier(audience=BASE, service_accounts=[ACCOUNT], certs_url=server.url)
        handler = kit.TaskHandler(app_calls[0], verifier=verifier)
        for token in hostile_tokens(signer):
            caplog.clear()
            with caplog.at_level(logging.WARNING, "cloudtasks_kit"):
                answer = handler.handle("POST", "/tasks/job", {"Authorization": "Bearer " + token}, ENVELOPE)
                asgi = run_asgi(
                    handler, headers={"authorization": "Bearer " + token}, receive=AsgiBody([ENVELOPE])
                )
            assert answer.status == 401 and asgi is not None and asgi.status == 401
            assert caplog.records and all(len(r.getMessage()) < 400 for r in caplog.records)
            assert all(token not in r.getMessage() for r in caplog.records)
    assert app_calls[1] == []


def test_a_genuine_token_still_passes_with_a_certs_url(
    app_calls: tuple[kit.TaskApp, list[int]], signer: TokenSigner
) -> None:
    with CertsServer(json.dumps(signer.certs()).encode()) as server:
        handler = kit.TaskHandler(app_calls[0], certs_url=server.url)
        assert handler.handle("POST", "/tasks/job", {"Authorization": bearer(signer)}, ENVELOPE).status == 200
        answer = run_asgi(handler, headers={"authorization": bearer(signer)}, receive=AsgiBody([ENVELOPE]))
        assert answer is not None and answer.status == 200
        assert server.requests == 1
    assert app_calls[1] == [1, 1]


# Certificates down: 503 with Retry-After, a logged cause, a negative cache.


@pytest.mark.parametrize("down", ["refused", "500", "not-json"])
def test_unavailable_certificates_are_503_with_retry_after(
    app_calls: tuple[kit.TaskApp, list[int]],
    signer: TokenSigner,
    caplog: pytest.LogCaptureFixture,
    down: str,
) -> None:
    def check(url: str) -> None:
        verifier = kit.TokenVerifier(audience=BASE, service_accounts=[ACCOUNT], certs_url=url, failure_ttl=30)
        handler = kit.TaskHandler(app_calls[0], verifier=verifier)
        with caplog.at_level(logging.ERROR, "cloudtasks_kit"):
            first = handler.handle("POST", "/tasks/job", {"Authorization": bearer(signer)}, ENVELOPE)
        assert first.status == 503 and 1 <= int(first.headers["Retry-After"]) <= 30
        assert "certificates" in caplog.text and "unavailable" in caplog.text
        for _ in range(3):
            again = run_asgi(handler, headers={"authorization": bearer(signer)}, receive=AsgiBody([ENVELOPE]))
            assert again is not None and again.status == 503 and "retry-after" in again.headers
        stats = verifier.certificates.stats
        assert (stats.fetches, stats.failures, stats.negative_hits) == (1, 1, 3)

    if down == "refused":
        check(closed_port_url())
    else:
        body, status = (b"{}", 500) if down == "500" else (b"<html>maintenance</html>", 200)
        with CertsServer(body, status) as server:
            check(server.url)
            assert server.requests == 1
    assert app_calls[1] == []


def test_a_hung_certs_server_costs_the_fetch_timeout_not_two_minutes(
    app_calls: tuple[kit.TaskApp, list[int]], signer: TokenSigner
) -> None:
    with CertsServer(json.dumps(signer.certs()).encode()) as server:
        server.gate = threading.Event()  # the server never answers until the test ends
        verifier = kit.TokenVerifier(
            audience=BASE, service_accounts=[ACCOUNT], certs_url=server.url, fetch_timeout=0.2
        )
        answer = kit.TaskHandler(app_calls[0], verifier=verifier).handle(
            "POST", "/tasks/job", {"Authorization": bearer(signer)}, ENVELOPE
        )
        assert answer.status == 503
        assert "timed out" in str(verifier.certificates._failure)


# Under ASGI: fetches happen off the loop, once for all waiters.


async def test_a_slow_fetch_holds_up_only_the_requests_that_need_it(
    app_calls: tuple[kit.TaskApp, list[int]], signer: TokenSigner
) -> None:
    other = TokenSigner()
    both = {**signer.certs(), **other.certs()}
    with CertsServer(json.dumps(signer.certs()).encode()) as server:
        verifier = kit.TokenVerifier(audience=BASE, service_accounts=[ACCOUNT], certs_url=server.url)
        handler = kit.TaskHandler(app_calls[0], verifier=verifier)
        warm = await call_asgi(
            handler, headers={"authorization": bearer(signer)}, receive=AsgiBody([ENVELOPE])
        )
        assert warm is not None and warm.status == 200
        # A new key appears (Google rotated); the next fetch is held until the test releases it.
        server.body = json.dumps(both).encode()
        server.gate = threading.Event()
        verifier.certificates._fetched -= 61  # an unknown key may refetch now
        waiting = [
            asyncio.ensure_future(
                call_asgi(handler, headers={"authorization": bearer(other)}, receive=AsgiBody([ENVELOPE]))
            )
            for _ in range(4)
        ]
        deadline = time.monotonic() + 10
        while verifier.certificates.stats.shared_waits < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # The loop is free: a request that needs no fetch is answered while the fetch hangs.
        quick = await call_asgi(
            handler, headers={"authorization": bearer(signer)}, receive=AsgiBody([ENVELOPE])
        )
        assert quick is not None and quick.status == 200
        assert not any(task.done() for task in waiting)
        server.gate.set()
        answers = await asyncio.gather(*waiting)
    assert [a.status for a in answers if a is not None] == [200] * 4
    assert verifier.certificates.stats.fetches == 2 and server.requests == 2  # warm-up, then one shared
    assert verifier.certificates.stats.shared_waits == 3


def test_secrets_never_reach_the_log(
    app_calls: tuple[kit.TaskApp, list[int]], signer: TokenSigner, caplog: pytest.LogCaptureFixture
) -> None:
    handler = kit.TaskHandler(app_calls[0], certs=TokenSigner().certs())  # every token fails
    token = bearer(signer)
    with caplog.at_level(logging.DEBUG, "cloudtasks_kit"):
        handler.handle("POST", "/tasks/job", {"Authorization": token, "Cookie": "session=abc"}, ENVELOPE)
        handler.handle("POST", "/tasks/job", {"Authorization": token[:-5]}, ENVELOPE)
    assert caplog.records
    for secret in (token.split()[1], token.split()[1].split(".")[1], "session=abc"):
        assert secret not in caplog.text


# The emulator's and the fake's keys are not trusted where that cannot be meant.


@pytest.mark.parametrize("variable", ["K_SERVICE", "GAE_SERVICE", "FUNCTION_TARGET"])
def test_non_google_certificates_are_refused_on_a_google_runtime(
    monkeypatch: pytest.MonkeyPatch,
    app_calls: tuple[kit.TaskApp, list[int]],
    signer: TokenSigner,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, "worker")
    with pytest.raises(kit.UsageError, match=variable):
        kit.TaskHandler(app_calls[0], certs=signer.certs())
    with pytest.raises(kit.UsageError, match="allow_non_google_certs"):
        kit.TaskHandler(app_calls[0], certs_url="http://127.0.0.1:8124/certs")
    assert kit.TaskHandler(app_calls[0]).verifier is not None  # Google's certificates: fine
    verifier = kit.TokenVerifier(
        audience=BASE, service_accounts=[ACCOUNT], certs=signer.certs(), allow_non_google_certs=True
    )
    assert verifier.verify(bearer(signer)).email == ACCOUNT


@pytest.mark.parametrize(
    "url", ["http://emulator:8124/certs", "https://certs.example.com/certs", "ftp://127.0.0.1/certs"]
)
def test_a_certs_url_off_this_machine_needs_saying_so(url: str) -> None:
    with pytest.raises(kit.UsageError, match="not on this machine"):
        kit.TokenVerifier(audience=BASE, service_accounts=[ACCOUNT], certs_url=url)
    kit.TokenVerifier(audience=BASE, service_accounts=[ACCOUNT], certs_url=url, allow_non_google_certs=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8124/certs",
        "http://localhost:8124/certs",
        "http://[::1]:8124/certs",
        "http://0.0.0.0:1/c",
    ],
)
def test_a_local_certs_url_is_fine_and_logged(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "cloudtasks_kit"):
        kit.TokenVerifier(audience=BASE, service_accounts=[ACCOUNT], certs_url=url)
    assert "development only" in caplog.text
