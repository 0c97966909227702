"""The engine's pure parts: backoff, the stop rule, the token bucket, tombstone windows, faults."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cloudtasks_kit as kit
from cloudtasks_kit.engine.clock import ManualClock
from cloudtasks_kit.engine.faults import Faults
from cloudtasks_kit.engine.scheduling import TokenBucket, backoff, retries_exhausted
from cloudtasks_kit.testing import NotIdleError
from cloudtasks_kit.transports.fake import FakeTransport


def test_backoff_example_from_the_service_docs() -> None:
    schedule = [backoff(k, min_backoff=10, max_backoff=300, max_doublings=3) for k in range(9)]
    assert schedule == [10, 20, 40, 80, 160, 240, 300, 300, 300]


@given(
    st.integers(0, 60),
    st.floats(0.1, 100),
    st.floats(0.1, 10_000),
    st.integers(0, 16),
)
def test_backoff_never_shrinks_and_never_passes_the_cap(
    retry: int, low: float, high: float, doublings: int
) -> None:
    high = max(low, high)
    now = backoff(retry, min_backoff=low, max_backoff=high, max_doublings=doublings)
    after = backoff(retry + 1, min_backoff=low, max_backoff=high, max_doublings=doublings)
    assert low <= now <= after <= high


@pytest.mark.parametrize(
    ("attempts", "since", "max_attempts", "duration", "stop"),
    [
        (3, 0, 3, 0, True),  # attempts used up, no duration limit
        (2, 0, 3, 0, False),
        (3, 10, 3, 60, False),  # attempts used up, duration not yet
        (3, 60, 3, 60, True),
        (1, 1000, 3, 60, False),  # duration used up, attempts not yet
        (1000, 10**6, -1, 60, False),  # unlimited attempts never run out
    ],
)
def test_stop_rule_needs_both_limits_used_up(
    attempts: int, since: float, max_attempts: int, duration: float, stop: bool
) -> None:
    assert (
        retries_exhausted(
            attempts=attempts, since_first=since, max_attempts=max_attempts, max_retry_duration=duration
        )
        is stop
    )


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, size=3, now=1_800_000_000.0)
    now = 1_800_000_000.0
    assert [bucket.take(now) for _ in range(4)] == [True, True, True, False]
    assert bucket.next_token_at(now) == pytest.approx(now + 0.5)
    assert bucket.take(now + 0.5)
    assert not bucket.take(now + 0.5)


@given(st.floats(0.5, 500), st.integers(1, 100), st.integers(1, 300))
def test_token_bucket_on_virtual_time_never_stalls(rate: float, size: int, takes: int) -> None:
    now = 1_795_000_000.123
    bucket = TokenBucket(rate, size, now)
    for _ in range(takes):
        now = bucket.next_token_at(now)
        assert bucket.take(now)


def test_task_tombstone_expires_after_the_window() -> None:
    fake = FakeTransport(limits=kit.Limits(task_tombstone=timedelta(minutes=10)))
    queue = fake.client().queue("q")
    queue.create()
    queue.create_task("https://w.test/x", task_id="t")
    queue.delete_task("t")
    with pytest.raises(kit.AlreadyExists):
        queue.create_task("https://w.test/x", task_id="t")
    fake.clock.advance(timedelta(minutes=11))
    with pytest.raises(kit.NotFound, match="not found"):
        queue.get_task("t")
    assert queue.create_task("https://w.test/x", task_id="t").id == "t"


def test_queue_tombstone_expires_after_the_window() -> None:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    queue.delete()
    with pytest.raises(kit.FailedPrecondition, match="existed too recently"):
        queue.create()
    fake.clock.advance(timedelta(days=3, seconds=1))
    assert queue.create().id == "q"


def test_strict_by_default_and_auto_create_on_request() -> None:
    with pytest.raises(kit.NotFound):
        FakeTransport().client().queue("q").create_task("https://w.test/x")
    fake = FakeTransport(auto_create_queues=True)
    fake.client().queue("q").create_task("https://w.test/x")
    assert fake.queue("q").state is kit.QueueState.RUNNING
    assert len(fake.tasks("q")) == 1


def test_run_until_idle_has_a_bound_with_a_clear_error() -> None:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create(retry=kit.RetryConfig(max_attempts=-1))
    fake.deliver_to(lambda d: 500)
    queue.create_task("https://w.test/x")
    with pytest.raises(NotIdleError, match="stopped after 50 attempts with 1 task"):
        fake.run_until_idle(max_attempts=50)
    assert len(fake.deliveries) == 50


def test_running_without_a_target_says_how_to_add_one() -> None:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    queue.create_task("https://w.test/x")
    with pytest.raises(LookupError, match="deliver_to"):
        fake.run_until_idle()


def test_unmatched_url_prefix_fails_like_an_unreachable_host() -> None:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create(retry=kit.RetryConfig(max_attempts=2))
    fake.deliver_to(lambda d: 200, url_prefix="https://known.test/")
    queue.create_task("https://unknown.test/x")
    deliveries = fake.run_until_idle()
    assert [d.status for d in deliveries] == [None, None]
    assert deliveries[0].error is not None and "no target" in deliveries[0].error


def test_advance_delivers_only_what_falls_due() -> None:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    fake.deliver_to(lambda d: 200)
    queue.create_task("https://w.test/now")
    queue.create_task("https://w.test/later", delay=timedelta(minutes=10))
    assert [d.url for d in fake.advance(timedelta(minutes=5))] == ["https://w.test/now"]
    assert [d.url for d in fake.advance(timedelta(minutes=5))] == ["https://w.test/later"]


def test_faults_fail_the_next_calls_and_lost_ones_take_effect() -> None:
    fake = FakeTransport()
    client = fake.client(retry_policy=None)  # see the faults themselves, not the kit's retries
    queue = client.queue("q")
    queue.create()
    fake.faults.fail("create_task", kit.StatusCode.UNAVAILABLE, times=1)
    with pytest.raises(kit.Unavailable, match="injected fault"):
        queue.create_task("https://w.test/x", task_id="a")
    assert fake.tasks("q") == []
    fake.faults.fail("create_task", kit.StatusCode.DEADLINE_EXCEEDED, lost=True)
    with pytest.raises(kit.DeadlineExceeded):
        queue.create_task("https://w.test/x", task_id="b")
    assert [t.id for t in fake.tasks("q")] == ["b"]
    assert fake.faults.injected["create_task"] == 2 and fake.faults.lost["create_task"] == 1


def test_random_faults_are_repeatable_with_a_seed() -> None:
    def run() -> list[bool]:
        faults = Faults()
        faults.fail_randomly("create_task", rate=0.3, lost_fraction=0.5, seed=7)
        return [faults.decide("create_task") is not None for _ in range(200)]

    outcomes = run()
    assert outcomes == run()
    assert 30 < sum(outcomes) < 90


def test_manual_clock_refuses_to_go_back() -> None:
    clock = ManualClock(start=100.0)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    clock.set(50.0)
    assert clock.now() == 100.0


def test_the_fake_delivers_over_real_http(local_server: Any, project: str) -> None:
    seen: list[tuple[str, bytes]] = []
    local_server.handlers[project] = lambda method, path, headers, body: seen.append((path, body)) or 201
    fake = FakeTransport()
    queue = fake.client().queue("http")
    queue.create()
    fake.deliver_over_http()
    queue.create_task(f"{local_server.url}/{project}/hook", text="hi")
    (delivery,) = fake.run_until_idle()
    assert delivery.status == 201
    assert seen == [("/hook", b"hi")]
    local_server.handlers.pop(project)


def test_an_attempt_never_shows_its_token_in_a_repr() -> None:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    queue.create_task(
        "https://w.test/x", oidc=kit.OidcToken(service_account_email="a@p.iam.gserviceaccount.com")
    )
    (dispatch,) = fake.engine.scheduler.take_due()
    assert dispatch.headers["Authorization"].startswith("Bearer ")
    assert "Bearer" not in repr(dispatch)


def test_each_attempt_records_what_its_result_did_to_the_task() -> None:
    # The record says which rule chose the wait and when the next attempt is due: the dashboard's "why".
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create(retry=kit.RetryConfig(max_attempts=3, min_backoff=timedelta(seconds=2)))
    answers = iter([503, 500, 500])
    fake.deliver_to(lambda d: next(answers))
    queue.create_task("https://w.test/x")
    first, second, third = fake.run_until_idle()
    assert first.outcome is not None and first.outcome.kind == "retry"
    assert first.outcome.backoff == 2 and first.outcome.next_time == pytest.approx(first.time + 2)
    assert first.outcome.reason == "backoff 2 s: min_backoff 2 s doubled 0 times"
    assert (
        second.outcome is not None and second.outcome.reason == "backoff 4 s: min_backoff 2 s doubled 1 time"
    )
    assert third.outcome is not None and third.outcome.kind == "gave_up"
    assert third.outcome.reason.startswith("max_attempts 3 reached (3 attempts)")


def test_a_successful_attempt_records_that_the_task_is_done() -> None:
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    fake.deliver_to(lambda d: 200)
    queue.create_task("https://w.test/x")
    (attempt,) = fake.run_until_idle()
    assert attempt.outcome is not None and attempt.outcome.kind == "succeeded"


# Validated once (issue 15): a create the kit's builder just checked is not checked again by the fake's
# engine; anything else the engine checks as the service does.


def _count_engine_checks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    from cloudtasks_kit import rules

    seen: list[object] = []
    real = rules.check_task_message

    def counting(task: object, **kwargs: Any) -> None:
        seen.append(task)
        real(task, **kwargs)

    monkeypatch.setattr(rules, "check_task_message", counting)
    return seen


def test_a_create_the_builder_checked_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _count_engine_checks(monkeypatch)
    queue = FakeTransport().client().queue("q")
    queue.create()
    queue.create_task("https://w.test/run", json={"a": 1})
    queue.create_tasks([{"url": "https://w.test/run"}])  # BatchCreateTasks: its inner tasks are checked
    assert len(seen) == 1
    with pytest.raises(kit.ValidationError, match="30 days"):  # the builder still refuses, before I/O
        queue.create_task("https://w.test/run", delay=timedelta(days=31))


def test_a_request_made_elsewhere_is_checked_by_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.api_core import exceptions as core
    from google.cloud import tasks_v2

    from cloudtasks_kit.transports import calls

    seen = _count_engine_checks(monkeypatch)
    fake = FakeTransport()
    queue = fake.client().queue("q")
    queue.create()
    raw = tasks_v2.CreateTaskRequest(parent=queue.name, task={"http_request": {"url": "ftp://w.test/"}})
    with pytest.raises(core.InvalidArgument, match="must start with 'http://' or 'https://'"):
        fake.call(calls.CREATE_TASK, raw)  # the seam itself: the engine's answer, as the service's
    assert len(seen) == 1


def test_an_engine_with_other_limits_checks_again() -> None:
    fake = FakeTransport(limits=kit.Limits(max_task_bytes=2000))
    queue = fake.client().queue("q")  # the client checks under the default limits (1 MiB)
    queue.create()
    with pytest.raises(kit.InvalidArgument, match="exceeds the limit of 2000 bytes"):
        queue.create_task("https://w.test/run", body=b"x" * 5000)


def test_the_driver_is_woken_only_when_something_may_be_due_sooner() -> None:
    # Every create used to wake the emulator's delivery loop; a wake costs a loop turn per call.
    fake = FakeTransport()
    woken: list[int] = []
    fake.engine.on_change = lambda: woken.append(1)
    queue = fake.client().queue("q")
    queue.create()
    queue.pause()
    queue.create_task("https://w.test/run")
    assert woken == []  # paused: nothing can be due
    queue.resume()
    assert len(woken) == 1  # the resumed queue has a task due now
    queue.create_task("https://w.test/run", delay=timedelta(hours=1))
    assert len(woken) == 1  # behind a task due sooner: the wake-up already planned stands
    later = fake.client().queue("later")
    later.create()
    later.create_task("https://w.test/run", delay=timedelta(hours=2))
    assert len(woken) == 2  # a new earliest moment for its queue
    later.create_task("https://w.test/run", delay=timedelta(hours=1))
    assert len(woken) == 3  # sooner than that queue's planned wake-up
    fake.deliver_to(lambda attempt: 200)
    fake.run_until_idle()  # and every task is still delivered
    assert len(fake.attempts) == 4
