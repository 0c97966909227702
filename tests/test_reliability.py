"""Client-side retries that never duplicate, and bulk creates that never drop: on the fake and the
emulator, under injected faults (lost responses included)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit.bulk import CreateResult
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.engine.faults import Faults
from cloudtasks_kit.retry import RetryPolicy
from cloudtasks_kit.transports.fake import FakeTransport

NO_WAIT = RetryPolicy(attempts=10, sleep=lambda _: None, deadline=None)
NO_WAIT_ASYNC_SLEEPS: list[float] = []


async def _no_async_sleep(seconds: float) -> None:
    NO_WAIT_ASYNC_SLEEPS.append(seconds)


class Backend:
    def __init__(self, client: kit.CloudTasks, faults: Faults, count: Any) -> None:
        self.client = client
        self.faults = faults
        self.count = count  # () -> Counter of task ids in the queue
        self._start = (Counter(faults.injected), Counter(faults.lost))

    def injected(self, method: str) -> int:
        """Faults injected into ``method`` during this test (the emulator is shared by the session)."""
        return self.faults.injected[method] - self._start[0][method]

    def lost(self, method: str) -> int:
        return self.faults.lost[method] - self._start[1][method]


@pytest.fixture(params=["fake", pytest.param("emulator", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, project: str) -> Any:
    if request.param == "fake":
        fake = FakeTransport()
        client = fake.client(project, retry_policy=NO_WAIT)
        engine_run = lambda fn: fn(fake.engine)
        faults = fake.faults
    else:
        emulator: Emulator = request.getfixturevalue("emulator")
        client = emulator.client(project, retry_policy=NO_WAIT)
        engine_run = emulator.run
        faults = emulator.faults
    queue = client.queue("bulk")
    queue.create()
    queue.pause()  # nothing is delivered while we count

    def count() -> Counter[str]:
        return Counter(pb.name.rsplit("/", 1)[1] for pb in engine_run(lambda e: e.tasks_of(queue.name)))

    yield Backend(client, faults, count)
    faults.clear()
    client.close()


def test_a_lost_create_with_an_id_is_retried_and_returns_the_task_it_made(backend: Backend) -> None:
    queue = backend.client.queue("bulk")
    backend.faults.fail("create_task", kit.StatusCode.DEADLINE_EXCEEDED, lost=True)
    task = queue.create_task("https://w.example.com/x", json={"n": 1}, dedup_key="once")
    assert task.id == kit.task_id_for_key("once")
    assert task.create_time is not None
    assert backend.count() == Counter({task.id: 1})


def test_a_create_without_an_id_is_not_retried_by_default(backend: Backend) -> None:
    queue = backend.client.queue("bulk")
    backend.faults.fail("create_task", kit.StatusCode.UNAVAILABLE, lost=True)
    with pytest.raises(kit.Unavailable):
        queue.create_task("https://w.example.com/x")
    assert backend.injected("create_task") == 1
    assert sum(backend.count().values()) == 1  # it landed; a retry would have made a second one


def test_unnamed_retries_are_opt_in_and_may_duplicate(backend: Backend) -> None:
    queue = backend.client.queue("bulk")
    backend.faults.fail("create_task", kit.StatusCode.UNAVAILABLE, lost=True)
    queue.create_task("https://w.example.com/x", retry_policy=RetryPolicy(unnamed=True, sleep=lambda _: None))
    assert sum(backend.count().values()) == 2  # which is why it is not the default


def test_a_real_duplicate_on_the_first_attempt_is_still_an_error(backend: Backend) -> None:
    queue = backend.client.queue("bulk")
    queue.create_task("https://w.example.com/x", task_id="taken")
    with pytest.raises(kit.AlreadyExists):
        queue.create_task("https://w.example.com/x", task_id="taken")


def test_non_transient_errors_are_not_retried(backend: Backend) -> None:
    backend.faults.fail("create_task", kit.StatusCode.PERMISSION_DENIED, times=3)
    with pytest.raises(kit.PermissionDenied):
        backend.client.queue("bulk").create_task("https://w.example.com/x", task_id="denied")
    assert backend.injected("create_task") == 1
    backend.faults.clear()


def test_ten_thousand_keyed_creates_under_faults_make_each_task_once(backend: Backend) -> None:
    queue = backend.client.queue("bulk")
    backend.faults.fail_randomly("create_task", rate=0.2, lost_fraction=0.5, seed=11)
    for i in range(10_000):
        queue.create_task("https://w.example.com/x", json={"i": i}, dedup_key=f"job-{i}")
    counts = backend.count()
    assert len(counts) == 10_000
    assert set(counts.values()) == {1}
    assert counts.keys() == {kit.task_id_for_key(f"job-{i}") for i in range(10_000)}
    assert backend.injected("create_task") > 1500
    assert backend.lost("create_task") > 700


def test_ten_thousand_unkeyed_creates_under_faults_are_not_retried(backend: Backend) -> None:
    queue = backend.client.queue("bulk")
    backend.faults.fail_randomly("create_task", rate=0.2, lost_fraction=0.5, seed=12)
    seen_failures = 0
    for _ in range(10_000):
        try:
            queue.create_task("https://w.example.com/x")
        except (kit.Unavailable, kit.DeadlineExceeded):
            seen_failures += 1
    injected, lost = backend.injected("create_task"), backend.lost("create_task")
    assert seen_failures == injected  # every failure reached the caller: no retry hid one
    assert sum(backend.count().values()) == 10_000 - (injected - lost)


def test_bulk_ten_thousand_keyed_under_faults_make_each_task_once(backend: Backend) -> None:
    queue = backend.client.queue("bulk")
    backend.faults.fail_randomly("batch_create_tasks", rate=0.2, lost_fraction=0.5, seed=13)
    progress: list[tuple[int, int]] = []
    specs = [
        kit.TaskSpec(url="https://w.example.com/x", json={"i": i}, dedup_key=f"b-{i}") for i in range(10_000)
    ]
    results = queue.create_tasks(
        specs, concurrency=4, on_progress=lambda done, total: progress.append((done, total))
    )
    assert [r.index for r in results] == list(range(10_000))
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    assert [r.task.id for r in results if r.task] == [kit.task_id_for_key(f"b-{i}") for i in range(10_000)]
    counts = backend.count()
    assert len(counts) == 10_000 and set(counts.values()) == {1}
    assert progress[-1] == (10_000, 10_000) and len(progress) == 100
    assert backend.lost("batch_create_tasks") > 3


def test_bulk_without_keys_does_not_retry_and_reports_every_failure(backend: Backend) -> None:
    queue = backend.client.queue("bulk")
    backend.faults.fail_randomly("batch_create_tasks", rate=0.2, lost_fraction=0.5, seed=14)
    results = queue.create_tasks([{"url": "https://w.example.com/x"}] * 5_000)
    failed = [r for r in results if not r.ok]
    injected, lost = backend.injected("batch_create_tasks"), backend.lost("batch_create_tasks")
    assert len(failed) == injected * 100
    assert all(isinstance(r.error, (kit.Unavailable, kit.DeadlineExceeded)) for r in failed)
    assert sum(backend.count().values()) == 5_000 - (injected - lost) * 100


def test_bulk_reports_each_bad_input_in_place_and_creates_the_rest(backend: Backend) -> None:
    queue = backend.client.queue("bulk")
    queue.create_task("https://w.example.com/x", task_id="exists")
    specs: list[Any] = [
        {"url": "https://w.example.com/1", "task_id": "one"},
        {"url": "ftp://nope"},
        {"url": "https://w.example.com/2", "task_id": "exists"},
        kit.TaskSpec(url="https://w.example.com/3"),
        {"url": "https://w.example.com/4", "nonsense": True},
    ]
    results = queue.create_tasks(specs)
    assert [r.ok for r in results] == [True, False, False, True, False]
    assert isinstance(results[1].error, kit.ValidationError) and "ftp://nope" in str(results[1].error)
    assert isinstance(results[2].error, kit.AlreadyExists)
    assert isinstance(results[4].error, kit.ValidationError) and "nonsense" in str(results[4].error)
    assert results[0].task is not None and results[0].task.id == "one"


def test_bulk_splits_into_batches_of_one_hundred(fake: FakeTransport) -> None:
    queue = fake.client().queue("q")
    queue.create()
    calls: list[int] = []
    original = fake.call

    def counting(rpc: Any, request: Any) -> Any:
        if rpc.name == "batch_create_tasks":
            calls.append(len(request.requests))
        return original(rpc, request)

    fake.call = counting  # type: ignore[method-assign]
    results = queue.create_tasks([{"url": f"https://w.example.com/{i}"} for i in range(250)])
    assert sorted(calls) == [50, 100, 100]
    assert len(results) == 250 and all(isinstance(r, CreateResult) and r.ok for r in results)


def test_retry_policy_waits_grow_and_stop() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=4, sleep=waits.append, jitter=timedelta(0), deadline=None)
    fake = FakeTransport()
    queue = fake.client(retry_policy=policy).queue("q")
    queue.create()
    fake.faults.fail("create_task", kit.StatusCode.UNAVAILABLE, times=10)
    with pytest.raises(kit.Unavailable):
        queue.create_task("https://w.example.com/x", task_id="t")
    assert waits == [0.1, 0.2, 0.4]
    assert fake.faults.injected["create_task"] == 4


def test_retry_policy_deadline_stops_early() -> None:
    import time

    policy = RetryPolicy(
        attempts=100,
        sleep=time.sleep,
        initial=timedelta(milliseconds=50),
        deadline=timedelta(milliseconds=120),
    )
    fake = FakeTransport()
    queue = fake.client(retry_policy=policy).queue("q")
    queue.create()
    fake.faults.fail("create_task", kit.StatusCode.UNAVAILABLE, times=100)
    with pytest.raises(kit.Unavailable):
        queue.create_task("https://w.example.com/x", task_id="t")
    assert 2 <= fake.faults.injected["create_task"] <= 5


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="attempts 0"):
        RetryPolicy(attempts=0)


async def test_async_retries_and_bulk(fake: FakeTransport) -> None:
    NO_WAIT_ASYNC_SLEEPS.clear()
    client = fake.async_client(retry_policy=RetryPolicy(async_sleep=_no_async_sleep))
    queue = client.queue("q")
    await queue.create()
    fake.faults.fail("create_task", kit.StatusCode.UNAVAILABLE, lost=True)
    task = await queue.create_task("https://w.example.com/x", dedup_key="k")
    assert [t.id for t in fake.tasks("q")] == [task.id]
    assert len(NO_WAIT_ASYNC_SLEEPS) == 1
    fake.faults.fail("batch_create_tasks", kit.StatusCode.UNAVAILABLE, lost=True)
    results = await queue.create_tasks(
        [{"url": "https://w.example.com/x", "task_id": f"a{i}"} for i in range(150)]
    )
    assert all(r.ok for r in results)
    assert len(fake.tasks("q")) == 151
