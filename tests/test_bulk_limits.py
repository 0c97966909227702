"""Bulk creates that respect sizes and the retry policy, and resolve lost answers as single creates do."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit import CreateOutcome
from cloudtasks_kit.bulk import batch_budget, cut
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.engine.faults import Faults
from cloudtasks_kit.retry import RetryPolicy
from cloudtasks_kit.transports.fake import FakeTransport

NO_WAIT = RetryPolicy(attempts=10, sleep=lambda _: None, deadline=None)
URL = "https://w.example.com/x"
GRPC_MAX = 4 * 1024 * 1024  # what a gRPC server (the emulator's included) receives by default


class Recorded:
    """A client whose transport records the size of every BatchCreateTasks request it sends."""

    def __init__(self, name: str, client: kit.CloudTasks, faults: Faults, pause: Any) -> None:
        self.name = name
        self.client = client
        self.faults = faults
        self.pass_a_second = pause
        self.batches: list[tuple[int, int]] = []  # (requests, bytes)
        original = client.transport.call

        def recording(rpc: Any, request: Any) -> Any:
            if rpc.name == "batch_create_tasks":
                raw = type(request).pb(request)
                self.batches.append((len(raw.requests), raw.ByteSize()))
            return original(rpc, request)

        client.transport.call = recording  # type: ignore[method-assign]
        self._start = Counter(faults.injected)

    def injected(self, method: str) -> int:
        return self.faults.injected[method] - self._start[method]


@pytest.fixture(params=["fake", "emulator"])
def backend(request: pytest.FixtureRequest, project: str) -> Iterator[Recorded]:
    limits = kit.Limits(max_task_bytes=8 * 1024 * 1024)  # let a task past gRPC's limit reach the wire
    if request.param == "fake":
        fake = FakeTransport()
        client = fake.client(project, retry_policy=NO_WAIT, limits=limits)
        yield Recorded("fake", client, fake.faults, lambda: fake.sleep(1.0))
        fake.faults.clear()
    else:
        emulator: Emulator = request.getfixturevalue("emulator")
        client = emulator.client(project, retry_policy=NO_WAIT, limits=limits)
        yield Recorded("emulator", client, emulator.faults, lambda: time.sleep(1.0))
        emulator.faults.clear()
    client.close()


def paused(backend: Recorded, name: str = "bulk") -> kit.QueueHandle:
    queue = backend.client.queue(name)
    queue.create()
    queue.pause()
    return queue


def test_a_hundred_tasks_of_45_kb_go_in_calls_under_the_grpc_limit(backend: Recorded) -> None:
    queue = paused(backend)
    body = b"x" * (45 * 1024)
    results = queue.create_tasks([{"url": URL, "body": body, "task_id": f"big-{i}"} for i in range(100)])
    assert all(r.ok for r in results), [r for r in results if not r.ok][:2]
    assert [r.task.id for r in results if r.task] == [f"big-{i}" for i in range(100)]
    assert sum(n for n, _ in backend.batches) == 100 and len(backend.batches) == 2
    assert all(size < GRPC_MAX for _, size in backend.batches)
    assert len(list(queue.list_tasks())) == 100


def test_one_task_too_large_is_that_items_error_and_not_retried(backend: Recorded) -> None:
    """The emulator's gRPC server refuses the call carrying it (RESOURCE_EXHAUSTED, larger than max); the
    fake has no message limit, and its engine refuses the task itself (over 1 MiB)."""
    queue = paused(backend)
    specs = [{"url": URL, "task_id": f"s-{i}"} for i in range(10)]
    specs.insert(5, {"url": URL, "task_id": "huge", "body": b"x" * (5 * 1024 * 1024)})
    results = queue.create_tasks(specs)
    assert [r.ok for r in results] == [True] * 5 + [False] + [True] * 5
    error = results[5].error
    assert isinstance(error, kit.InvalidArgument)
    if backend.name == "emulator":
        assert kit.errors.is_too_large(error) and "larger than max" in str(error)
    assert sorted(n for n, _ in backend.batches) == [1, 5, 5]  # the huge one alone, sent once
    assert {t.id for t in queue.list_tasks()} == {f"s-{i}" for i in range(10)}


def test_a_call_refused_as_too_large_is_halved_not_retried() -> None:
    fake = FakeTransport()
    client = fake.client(retry_policy=NO_WAIT)
    recorded = Recorded("fake", client, fake.faults, None)
    queue = paused(recorded)
    fake.faults.fail(
        "batch_create_tasks",
        kit.StatusCode.INVALID_ARGUMENT,
        message="Request payload size exceeds the limit",
    )
    results = queue.create_tasks([{"url": URL, "task_id": f"t-{i}"} for i in range(40)])
    assert all(r.ok for r in results)
    assert [n for n, _ in recorded.batches] == [40, 20, 20]


def test_chunks_are_cut_by_count_and_by_bytes() -> None:
    from google.cloud import tasks_v2

    def item(i: int, size: int) -> tuple[int, Any]:
        request = tasks_v2.CreateTaskRequest.pb()(parent="p")
        request.task.http_request.body = b"x" * size
        return i, request

    assert [len(p) for p in cut([item(i, 10) for i in range(250)], 10**9)] == [100, 100, 50]
    parts = cut([item(i, 1000) for i in range(50)], 10_000)
    assert all(len(p) == 9 for p in parts[:-1]) and sum(len(p) for p in parts) == 50
    alone = cut([item(0, 10), item(1, 50_000), item(2, 10)], 10_000)
    assert [[i for i, _ in p] for p in alone] == [[0], [1], [2]]
    assert batch_budget(kit.Limits()) == 4 * 1024 * 1024 - 256 * 1024


def test_what_is_retried_comes_from_the_policy_alone(fake: FakeTransport) -> None:
    queue = fake.client().queue("q")
    queue.create()
    only_unavailable = RetryPolicy(retry_on=(kit.Unavailable,), sleep=lambda _: None)
    fake.faults.fail("batch_create_tasks", kit.StatusCode.DEADLINE_EXCEEDED)
    results = queue.create_tasks([{"url": URL, "task_id": "a"}], retry_policy=only_unavailable)
    assert isinstance(results[0].error, kit.DeadlineExceeded)
    assert fake.faults.injected["batch_create_tasks"] == 1
    with_aborted = RetryPolicy(retry_on=(kit.FailedPrecondition,), sleep=lambda _: None)
    fake.faults.fail("batch_create_tasks", kit.StatusCode.FAILED_PRECONDITION)
    results = queue.create_tasks([{"url": URL, "task_id": "b"}], retry_policy=with_aborted)
    assert results[0].ok and fake.faults.injected["batch_create_tasks"] == 2


def test_lost_bulk_answers_are_resolved_like_single_creates(backend: Recorded) -> None:
    queue = paused(backend)
    specs = [{"url": URL, "json": {"i": i}, "dedup_key": f"k-{i}"} for i in range(300)]
    backend.faults.fail_randomly("batch_create_tasks", rate=0.3, lost_fraction=0.5, seed=31)
    backend.faults.fail_randomly("get_task", rate=0.5, codes=(kit.StatusCode.PERMISSION_DENIED,), seed=32)
    results = queue.create_tasks(specs, concurrency=1)
    assert all(r.ok for r in results), [r for r in results if not r.ok][:2]
    outcomes = Counter(r.task.create_outcome for r in results if r.task)
    assert set(outcomes) <= {CreateOutcome.CREATED, CreateOutcome.LANDED, CreateOutcome.UNCONFIRMED}
    ids = Counter(t.id for t in queue.list_tasks())
    assert len(ids) == 300 and set(ids.values()) == {1}


@pytest.mark.parametrize("reads", ["allowed", "denied"])
def test_bulk_recreating_used_keys_is_already_exists_whenever_readable(backend: Recorded, reads: str) -> None:
    queue = paused(backend)
    specs = [{"url": URL, "json": {"i": i}, "dedup_key": f"old-{i}"} for i in range(300)]
    assert all(r.ok for r in queue.create_tasks(specs))
    backend.pass_a_second()
    # The first call fails before it takes effect, its retry after (a lost answer), then the retries
    # find every id taken, after calls that got no answer: each is read back.
    backend.faults.fail("batch_create_tasks", kit.StatusCode.UNAVAILABLE)
    backend.faults.fail("batch_create_tasks", kit.StatusCode.DEADLINE_EXCEEDED, lost=True)
    if reads == "denied":
        backend.faults.fail_randomly("get_task", rate=1.0, codes=(kit.StatusCode.PERMISSION_DENIED,))
    results = queue.create_tasks(specs, concurrency=1)
    assert backend.injected("batch_create_tasks") == 2
    if reads == "allowed":
        assert all(isinstance(r.error, kit.AlreadyExists) for r in results)
    else:
        unconfirmed = [r for r in results if r.ok]
        assert unconfirmed  # the first chunk's items, whose reads were denied
        assert all(r.task and r.task.create_outcome is CreateOutcome.UNCONFIRMED for r in unconfirmed)
        assert all(isinstance(r.error, kit.AlreadyExists) for r in results if not r.ok)
    assert len(list(queue.list_tasks())) == 300
