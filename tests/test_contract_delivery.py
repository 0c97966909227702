"""The contract suite, delivery half: the same tests on the fake (virtual time) and the emulator (real time,
durations scaled down by ``backend.scale``)."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

import cloudtasks_kit as kit

from .conftest import Harness, wait_until

ACCOUNT = "tasks@test-project.iam.gserviceaccount.com"


def seconds(backend: Harness, value: float) -> timedelta:
    return timedelta(seconds=value * backend.scale)


def intervals(deliveries: list[Any]) -> list[float]:
    times = [d.time for d in deliveries]
    return [b - a for a, b in itertools.pairwise(times)]


def close_to(actual: list[float], expected: list[float], backend: Harness) -> bool:
    if backend.kind == "fake":
        return all(abs(a - e) < 1e-6 for a, e in zip(actual, expected, strict=True))
    # Real time: each gap within 40 ms plus 15% of itself.
    return all(abs(a - e) <= 0.04 + 0.15 * e for a, e in zip(actual, expected, strict=True))


@pytest.mark.slow  # on the emulator it waits out the real backoff schedule
def test_backoff_schedule_doubles_then_grows_linearly_then_caps(delivery_backend: Harness) -> None:
    backend = delivery_backend
    queue = backend.client.queue("backoff")
    queue.create(
        retry=kit.RetryConfig(
            max_attempts=9,
            min_backoff=seconds(backend, 10),
            max_backoff=seconds(backend, 300),
            max_doublings=3,
        )
    )
    backend.handle(lambda *_: 503)
    queue.create_task(backend.url("/fail"), task_id="failing")
    deliveries = backend.run_until_idle(timeout=30)
    assert [d.status for d in deliveries] == [503] * 9
    expected = [x * backend.scale for x in (10, 20, 40, 80, 160, 240, 300, 300)]
    assert close_to(intervals(deliveries), expected, backend), intervals(deliveries)
    with pytest.raises(kit.NotFound, match="existed recently"):
        queue.get_task("failing")


def test_retrying_stops_only_when_attempts_and_duration_are_both_used_up(delivery_backend: Harness) -> None:
    backend = delivery_backend
    queue = backend.client.queue("stops")
    queue.create(
        retry=kit.RetryConfig(
            max_attempts=2,
            max_retry_duration=seconds(backend, 60),
            min_backoff=seconds(backend, 10),
            max_backoff=seconds(backend, 300),
            max_doublings=16,
        )
    )
    backend.handle(lambda *_: 500)
    queue.create_task(backend.url("/fail"))
    deliveries = backend.run_until_idle(timeout=30)
    # Attempts at 0, 10, 30, 70: after the second, the 60 s duration still holds the task.
    assert len(deliveries) == 4
    assert close_to(intervals(deliveries), [x * backend.scale for x in (10, 20, 40)], backend)


def test_max_attempts_alone_stops_when_duration_is_unlimited(delivery_backend: Harness) -> None:
    backend = delivery_backend
    queue = backend.client.queue("attempts")
    queue.create(
        retry=kit.RetryConfig(
            max_attempts=3, min_backoff=seconds(backend, 1), max_backoff=seconds(backend, 2)
        )
    )
    backend.handle(lambda *_: 404)
    queue.create_task(backend.url("/missing"), task_id="three")
    assert len(backend.run_until_idle()) == 3


def test_task_retry_config_overrides_the_queue(delivery_backend: Harness) -> None:
    backend = delivery_backend
    queue = backend.client.queue("override")
    queue.create(
        retry=kit.RetryConfig(
            max_attempts=10, min_backoff=seconds(backend, 1), max_backoff=seconds(backend, 1)
        )
    )
    backend.handle(lambda *_: 500)
    queue.create_task(backend.url("/x"), retry=kit.RetryConfig(max_attempts=2))
    assert len(backend.run_until_idle()) == 2


def test_headers_across_503_then_404_then_200(delivery_backend: Harness) -> None:
    backend = delivery_backend
    queue = backend.client.queue("headers")
    queue.create(retry=kit.RetryConfig(min_backoff=seconds(backend, 5), max_backoff=seconds(backend, 60)))
    answers = iter([503, 404, 200])
    backend.handle(lambda *_: next(answers))
    task = queue.create_task(backend.url("/h"), json={"a": 1}, headers={"X-Mine": "yes"}, task_id="headed")
    deliveries = backend.run_until_idle()
    assert [d.status for d in deliveries] == [503, 404, 200]
    first, second, third = deliveries
    for delivery in deliveries:
        assert delivery.header("X-CloudTasks-QueueName") == backend.queue_id("headers")
        assert delivery.header("X-CloudTasks-TaskName") == "headed"
        assert delivery.header("User-Agent") == "Google-Cloud-Tasks"
        assert delivery.header("X-Mine") == "yes"
        assert delivery.header("Content-Type") == "application/json"
        assert delivery.json() == {"a": 1}
    assert [d.header("X-CloudTasks-TaskRetryCount") for d in deliveries] == ["0", "1", "2"]
    assert [d.header("X-CloudTasks-TaskExecutionCount") for d in deliveries] == ["0", "0", "1"]
    assert [d.header("X-CloudTasks-TaskPreviousResponse") for d in deliveries] == [None, "503", "404"]
    assert first.header("X-CloudTasks-TaskRetryReason") is None
    # Present but empty on every retry (recorded: aertje/cloud-tasks-emulator conformance/golden/dispatch.json).
    assert [second.header("X-CloudTasks-TaskRetryReason"), third.header("X-CloudTasks-TaskRetryReason")] == [
        "",
        "",
    ]
    assert task.schedule_time is not None
    assert abs(float(first.header("X-CloudTasks-TaskETA") or 0) - task.schedule_time.timestamp()) < 1e-3
    assert float(second.header("X-CloudTasks-TaskETA") or 0) > float(
        first.header("X-CloudTasks-TaskETA") or 0
    )


def test_attempt_fields_are_recorded_on_the_task(delivery_backend: Harness) -> None:
    backend = delivery_backend
    queue = backend.client.queue("attempts")
    queue.create(retry=kit.RetryConfig(min_backoff=seconds(backend, 100), max_backoff=seconds(backend, 100)))
    backend.handle(lambda *_: 503)
    queue.create_task(backend.url("/x"), task_id="tracked")
    backend.wait_for_deliveries(1)
    wait_until(lambda: queue.get_task("tracked").response_count == 1)
    task = queue.get_task("tracked")
    assert task.dispatch_count == 1
    assert task.first_attempt is not None and task.first_attempt.dispatch_time is not None
    assert task.last_attempt is not None
    assert task.last_attempt.response_code == kit.StatusCode.UNAVAILABLE
    assert task.last_attempt.response_time is not None
    assert task.schedule_time is not None and task.schedule_time > task.last_attempt.dispatch_time


def test_rate_limit_spaces_dispatches(delivery_backend: Harness) -> None:
    backend = delivery_backend
    rate = 5.0 if backend.kind == "fake" else 50.0
    queue = backend.client.queue("limited")
    created = queue.create(rate_limits=kit.RateLimits(max_dispatches_per_second=rate))
    burst = created.rate_limits.max_burst_size
    assert burst is not None and burst >= 1
    backend.handle(lambda *_: 200)
    queue.pause()
    for i in range(burst + 20):
        queue.create_task(backend.url("/x"), task_id=f"t{i}")
    queue.resume()
    deliveries = sorted(backend.run_until_idle(), key=lambda d: d.time)
    assert len(deliveries) == burst + 20
    paced = deliveries[burst - 1 :]
    mean_gap = (paced[-1].time - paced[0].time) / 20
    assert mean_gap == pytest.approx(1 / rate, rel=0.1 if backend.kind == "fake" else 0.25)


def test_paused_and_disabled_queues_hold_their_tasks(delivery_backend: Harness) -> None:
    backend = delivery_backend
    seen: list[str] = []
    backend.handle(lambda method, path, headers, body: seen.append(path) or 200)
    paused, disabled = backend.client.queue("paused"), backend.client.queue("disabled")
    paused.create()
    disabled.create()
    paused.pause()
    backend.engine(lambda engine: engine.disable_queue(disabled.name))
    paused.create_task(backend.url("/p"))
    disabled.create_task(backend.url("/d"))
    backend.run_until_idle()
    time.sleep(0.05)
    assert seen == []
    paused.resume()
    backend.run_until_idle()
    wait_until(lambda: seen == ["/p"])
    assert len(list(disabled.list_tasks())) == 1


def test_oidc_token_verifies_with_the_backends_certificates(delivery_backend: Harness) -> None:
    backend = delivery_backend
    tokens: list[str] = []
    backend.handle(lambda method, path, headers, body: tokens.append(headers["Authorization"]) or 200)
    queue = backend.client.queue("secure")
    queue.create()
    queue.create_task(
        backend.url("/a"), oidc=kit.OidcToken(service_account_email=ACCOUNT, audience="https://aud.test")
    )
    queue.create_task(backend.url("/b"), oidc=kit.OidcToken(service_account_email=ACCOUNT))
    backend.run_until_idle()
    wait_until(lambda: len(tokens) == 2)
    explicit, defaulted = (t.removeprefix("Bearer ") for t in sorted(tokens, key=len))
    claims = [
        backend.verify_token(t, a)
        for t, a in ((explicit, "https://aud.test"), (defaulted, backend.url("/b")))
    ]
    if claims[0]["aud"] != "https://aud.test":
        claims = [
            backend.verify_token(t, a)
            for t, a in ((defaulted, "https://aud.test"), (explicit, backend.url("/b")))
        ]
    for claim in claims:
        assert claim["email"] == ACCOUNT
        assert claim["email_verified"] is True
        assert claim["iss"] == "https://accounts.google.com"
        assert claim["exp"] - claim["iat"] == 3600
    with pytest.raises(ValueError, match="audience"):
        backend.verify_token(explicit, "https://someone-else.test")


def test_oauth_token_is_an_opaque_bearer(delivery_backend: Harness) -> None:
    backend = delivery_backend
    seen: list[str] = []
    backend.handle(lambda method, path, headers, body: seen.append(headers["Authorization"]) or 200)
    queue = backend.client.queue("oauth")
    queue.create()
    queue.create_task(backend.url("/g"), oauth=kit.OAuthToken(service_account_email=ACCOUNT))
    backend.run_until_idle()
    wait_until(lambda: len(seen) == 1)
    assert seen[0].startswith("Bearer ya29.")


def test_queue_level_target_overrides_apply_at_delivery(delivery_backend: Harness) -> None:
    backend = delivery_backend
    seen: list[tuple[str, str, dict[str, str]]] = []
    backend.handle(lambda method, path, headers, body: seen.append((method, path, headers)) or 200)
    target_url = backend.url("/routed")
    host_port = target_url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    path = "/" + target_url.split("//", 1)[1].split("/", 1)[1]
    queue = backend.client.queue("routed")
    queue.create(
        http_target=kit.QueueHttpTarget(
            uri_override=kit.UriOverride(
                scheme="http", host=host, port=int(port) if port else None, path=path
            ),
            method="PUT",
            headers={"X-Queue": "q"},
            oidc=kit.OidcToken(service_account_email=ACCOUNT, audience="https://queue-aud.test"),
        )
    )
    queue.create_task("https://elsewhere.example.com/original", json={"n": 1})
    backend.run_until_idle()
    wait_until(lambda: len(seen) == 1)
    method, got_path, headers = seen[0]
    assert (method, got_path, headers["X-Queue"]) == ("PUT", "/routed", "q")
    claims = backend.verify_token(headers["Authorization"].removeprefix("Bearer "), "https://queue-aud.test")
    assert claims["email"] == ACCOUNT


def test_retry_after_holds_the_next_attempt(delivery_backend: Harness) -> None:
    backend = delivery_backend
    wait = 30 * backend.scale
    answers = iter([(429, {"Retry-After": str(max(1, round(wait)))}), 200])
    backend.handle(lambda *_: next(answers))
    queue = backend.client.queue("slowed")
    queue.create(retry=kit.RetryConfig(min_backoff=seconds(backend, 0.1), max_backoff=seconds(backend, 1)))
    queue.create_task(backend.url("/x"))
    first, second = backend.run_until_idle(timeout=30)
    assert second.time - first.time >= max(1, round(wait)) - 0.05


def test_in_process_deadline_counts_as_no_answer() -> None:
    from cloudtasks_kit.transports.fake import FakeTransport

    limits = kit.Limits(min_dispatch_deadline=timedelta(seconds=0.05))
    fake = FakeTransport(limits=limits)
    tasks = fake.client(limits=limits)
    queue = tasks.queue("slow")
    queue.create(retry=kit.RetryConfig(max_attempts=2))
    calls = iter([0.2, 0.0])
    fake.deliver_to(lambda d: time.sleep(next(calls)) or 200)
    queue.create_task("http://worker.test/slow", deadline=timedelta(seconds=0.1))
    first, second = fake.run_until_idle()
    assert (first.status, first.error) == (None, "DEADLINE_EXCEEDED")
    assert second.status == 200


def test_emulator_enforces_the_dispatch_deadline_and_concurrency(local_server: Any, project: str) -> None:
    from cloudtasks_kit.emulator import Emulator

    limits = kit.Limits(min_dispatch_deadline=timedelta(seconds=0.2))
    in_flight, peak, lock = 0, 0, threading.Lock()

    def slow(method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        nonlocal in_flight, peak
        if path == "/hang":  # outlives its deadline; the emulator stops counting it when it gives up
            time.sleep(0.6)
            return 200
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.1)
        with lock:
            in_flight -= 1
        return 200

    local_server.handlers[project] = slow
    with Emulator(limits=limits) as emulator:
        tasks = emulator.client(project, limits=limits)
        queue = tasks.queue("narrow")
        queue.create(
            rate_limits=kit.RateLimits(max_concurrent_dispatches=2),
            retry=kit.RetryConfig(max_attempts=2, min_backoff=timedelta(seconds=0.05)),
        )
        queue.create_task(f"{local_server.url}/{project}/hang", deadline=timedelta(seconds=0.3))
        for _ in range(6):
            queue.create_task(f"{local_server.url}/{project}/quick", deadline=timedelta(seconds=5))
        deliveries = emulator.wait_for_deliveries(8, timeout=20)
        hung = [d for d in deliveries if d.url.endswith("/hang")]
        assert [d.error for d in hung] == ["DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED"]
        assert peak == 2
        tasks.close()
    local_server.handlers.pop(project, None)
