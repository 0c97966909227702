"""Exact create semantics under faults, on the fake and the emulator (docs/reliability.md).

A create says how it came by its task (``CREATED``, ``LANDED``, ``UNCONFIRMED``); an id used before the
call is ``AlreadyExists`` with and without faults whenever the task can be read; a read that fails or is
not permitted never fails a create whose task exists.

The runs at scale use ``CLOUDTASKS_KIT_SOAK`` creates each (500 by default; ``CLOUDTASKS_KIT_SOAK=10000
pytest tests/test_create_semantics.py -k scale -s`` prints the figures of the full run).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit import CreateOutcome
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.engine.faults import Faults
from cloudtasks_kit.retry import RetryPolicy
from cloudtasks_kit.transports.fake import FakeTransport

COUNT = int(os.environ.get("CLOUDTASKS_KIT_SOAK", "500"))
NO_WAIT = RetryPolicy(attempts=10, sleep=lambda _: None, deadline=None)
URL = "https://w.example.com/x"


class Backend:
    """A client on the fake or the emulator, its faults, and a way to count the tasks in a queue."""

    def __init__(
        self,
        name: str,
        client: kit.CloudTasks,
        faults: Faults,
        tasks_in: Callable[[str], list[Any]],
        pass_a_second: Callable[[], None],
    ) -> None:
        self.name = name
        self.client = client
        self.faults = faults
        self._tasks_in = tasks_in
        self.pass_a_second = pass_a_second
        """Let a second pass, so an id used before and a create of it fall in different seconds."""
        self._start = (Counter(faults.injected), Counter(faults.lost))

    def injected(self, method: str) -> int:
        return self.faults.injected[method] - self._start[0][method]

    def lost(self, method: str) -> int:
        return self.faults.lost[method] - self._start[1][method]

    def count(self, queue: kit.QueueHandle) -> Counter[str]:
        return Counter(pb.name.rsplit("/", 1)[1] for pb in self._tasks_in(queue.name))


@pytest.fixture(params=["fake", "emulator"])
def backend(request: pytest.FixtureRequest, project: str) -> Iterator[Backend]:
    if request.param == "fake":
        fake = FakeTransport()
        client = fake.client(project, retry_policy=NO_WAIT)
        yield Backend(
            "fake",
            client,
            fake.faults,
            fake.engine.tasks_of,
            lambda: fake.sleep(1.0),
        )
        fake.faults.clear()
    else:
        emulator: Emulator = request.getfixturevalue("emulator")
        client = emulator.client(project, retry_policy=NO_WAIT)
        yield Backend(
            "emulator",
            client,
            emulator.faults,
            lambda name: emulator.run(lambda engine: engine.tasks_of(name)),
            lambda: time.sleep(1.0),
        )
        emulator.faults.clear()
    client.close()


def paused(backend: Backend, name: str = "q") -> kit.QueueHandle:
    queue = backend.client.queue(name)
    queue.create()
    queue.pause()  # nothing runs while we count
    return queue


# One create at a time.


def test_a_create_says_it_created_the_task(backend: Backend) -> None:
    queue = paused(backend)
    task = queue.create_task(URL, dedup_key="plain")
    assert task.create_outcome is CreateOutcome.CREATED and task.created_by_this_call is True
    assert queue.get_task(task).create_outcome is None  # read, not created


def test_a_lost_answer_is_landed_read_back_and_said(backend: Backend) -> None:
    queue = paused(backend)
    backend.faults.fail("create_task", kit.StatusCode.DEADLINE_EXCEEDED, lost=True)
    task = queue.create_task(URL, json={"n": 1}, dedup_key="lost")
    assert task.create_outcome is CreateOutcome.LANDED and task.created_by_this_call is True
    assert task.create_time is not None and task.url == URL
    assert backend.count(queue) == Counter({task.id: 1})


@pytest.mark.parametrize(
    "code", [kit.StatusCode.PERMISSION_DENIED, kit.StatusCode.INTERNAL, kit.StatusCode.NOT_FOUND]
)
def test_a_lost_answer_whose_read_fails_still_succeeds_with_the_name(
    backend: Backend, code: kit.StatusCode
) -> None:
    queue = paused(backend)
    backend.faults.fail("create_task", kit.StatusCode.UNAVAILABLE, lost=True)
    backend.faults.fail("get_task", code, times=20)  # an enqueuer without cloudtasks.tasks.get, say
    task = queue.create_task(URL, dedup_key="unreadable")
    assert task.create_outcome is CreateOutcome.UNCONFIRMED and task.created_by_this_call is None
    assert task.id == kit.task_id_for_key("unreadable") and task.create_time is None
    assert backend.count(queue) == Counter({task.id: 1})
    assert backend.injected("get_task") == 1  # one read, not retried: the create had its answer


def test_an_id_used_before_is_already_exists_with_or_without_a_failure_first(backend: Backend) -> None:
    queue = paused(backend)
    first = queue.create_task(URL, dedup_key="taken")
    backend.pass_a_second()
    with pytest.raises(kit.AlreadyExists):
        queue.create_task(URL, dedup_key="taken")
    backend.faults.fail("create_task", kit.StatusCode.UNAVAILABLE)  # not lost: the retry finds it taken
    with pytest.raises(kit.AlreadyExists, match="used before") as caught:
        queue.create_task(URL, dedup_key="taken")
    assert isinstance(caught.value.__cause__, kit.AlreadyExists)
    assert backend.count(queue) == Counter({first.id: 1})


def test_an_id_whose_task_already_ran_is_unconfirmed_after_a_failure(backend: Backend) -> None:
    """The documented limit: a task that already ran cannot be read, so after a lost answer the kit cannot
    tell "this call's task already ran" from "the id was used before"; it says so, it does not guess."""
    queue = paused(backend)
    queue.create_task(URL, dedup_key="ran")
    queue.delete_task(kit.task_id_for_key("ran"))  # as if it ran: the id stays taken for the tombstone window
    backend.pass_a_second()
    with pytest.raises(kit.AlreadyExists):
        queue.create_task(URL, dedup_key="ran")
    backend.faults.fail("create_task", kit.StatusCode.UNAVAILABLE)
    task = queue.create_task(URL, dedup_key="ran")
    assert task.create_outcome is CreateOutcome.UNCONFIRMED
    assert backend.count(queue) == Counter()


def test_a_too_large_create_is_not_retried(emulator: Emulator, project: str) -> None:
    """gRPC refuses a message over 4 MiB with RESOURCE_EXHAUSTED, which policies retry; the kit makes it
    InvalidArgument, as REST says, and does not send it again."""
    client = emulator.client(project, retry_policy=NO_WAIT, limits=kit.Limits(max_task_bytes=8 * 1024 * 1024))
    queue = client.queue("huge")
    queue.create()
    calls: list[str] = []
    original = client.transport.call

    def counting(rpc: Any, request: Any) -> Any:
        calls.append(rpc.name)
        return original(rpc, request)

    client.transport.call = counting  # type: ignore[method-assign]
    with pytest.raises(kit.InvalidArgument, match="larger than max"):
        queue.create_task(URL, body=b"x" * (5 * 1024 * 1024), task_id="huge")
    assert calls == ["create_task"]
    client.close()


async def test_the_async_facade_says_the_same(fake: FakeTransport) -> None:
    async def no_wait(_: float) -> None:
        return None

    client = fake.async_client(retry_policy=RetryPolicy(async_sleep=no_wait))
    queue = client.queue("q")
    await queue.create()
    fake.faults.fail("create_task", kit.StatusCode.UNAVAILABLE, lost=True)
    task = await queue.create_task(URL, dedup_key="k")
    assert task.create_outcome is CreateOutcome.LANDED
    fake.faults.fail("create_task", kit.StatusCode.UNAVAILABLE)
    fake.sleep(1.0)
    with pytest.raises(kit.AlreadyExists):
        await queue.create_task(URL, dedup_key="k")


# At scale, under random faults (half of them lost answers), with reads denied at random.


def test_keyed_creates_at_scale_make_each_task_once_and_never_fail(backend: Backend) -> None:
    queue = paused(backend)
    backend.faults.fail_randomly("create_task", rate=0.2, lost_fraction=0.5, seed=21)
    backend.faults.fail_randomly("get_task", rate=0.3, codes=(kit.StatusCode.PERMISSION_DENIED,), seed=22)
    outcomes: Counter[str] = Counter()
    failures = 0
    for i in range(COUNT):
        try:
            task = queue.create_task(URL, json={"i": i}, dedup_key=f"job-{i}")
        except kit.CloudTasksError:
            failures += 1
        else:
            assert task.id == kit.task_id_for_key(f"job-{i}")
            outcomes[task.create_outcome.value if task.create_outcome else "none"] += 1
    backend.faults.clear()
    counts = backend.count(queue)
    duplicates = sum(n - 1 for n in counts.values())
    lost = COUNT - len(counts)
    print(
        f"\n[{backend.name}] {COUNT} keyed creates, create_task faults {backend.injected('create_task')} "
        f"({backend.lost('create_task')} lost answers), get_task PERMISSION_DENIED "
        f"{backend.injected('get_task')}: duplicates {duplicates}, lost {lost}, false failures {failures}, "
        f"outcomes {dict(outcomes)}"
    )
    assert (duplicates, lost, failures) == (0, 0, 0)
    # A lost answer after the task was made is an ALREADY_EXISTS, not another landing: at most one each.
    assert 0 < outcomes["landed"] + outcomes["unconfirmed"] <= backend.lost("create_task")
    assert outcomes["unconfirmed"] == backend.injected("get_task")
    assert outcomes["landed"] > 0 and outcomes["unconfirmed"] > 0


@pytest.mark.parametrize("reads", ["allowed", "denied"])
def test_recreating_used_keys_at_scale_is_already_exists_whenever_readable(
    backend: Backend, reads: str
) -> None:
    queue = paused(backend)
    for i in range(COUNT):
        queue.create_task(URL, json={"i": i}, dedup_key=f"old-{i}")
    backend.pass_a_second()
    backend.faults.fail_randomly("create_task", rate=0.2, lost_fraction=0.5, seed=23)
    if reads == "denied":
        backend.faults.fail_randomly("get_task", rate=1.0, codes=(kit.StatusCode.PERMISSION_DENIED,))
    seen: Counter[str] = Counter()
    for i in range(COUNT):
        try:
            task = queue.create_task(URL, json={"i": i}, dedup_key=f"old-{i}")
        except kit.AlreadyExists:
            seen["AlreadyExists"] += 1
        except kit.CloudTasksError as exc:
            seen[type(exc).__name__] += 1
        else:
            seen[f"returned {task.create_outcome.value if task.create_outcome else None}"] += 1
    backend.faults.clear()
    print(
        f"\n[{backend.name}] {COUNT} used keys created again, reads {reads}, create_task faults "
        f"{backend.injected('create_task')} ({backend.lost('create_task')} lost answers): {dict(seen)}"
    )
    assert len(backend.count(queue)) == COUNT and set(backend.count(queue).values()) == {1}
    if reads == "allowed":
        assert seen == Counter({"AlreadyExists": COUNT})
    else:
        # Every retry after a failed first attempt found the id taken and could not read the task.
        retried = backend.injected("create_task") - backend.lost("create_task")
        assert retried > 0
        assert seen["returned unconfirmed"] == backend.injected("get_task") > 0
        assert seen["AlreadyExists"] + seen["returned unconfirmed"] == COUNT
