"""The engine's state: one record per queue and per task, holding the official protobufs, and the
:class:`ServiceState` the engine's RPCs and its scheduler share."""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from google.cloud import tasks_v2

from .._convert import set_seconds, to_seconds
from .journal import NO_JOURNAL, Journal
from .scheduling import TokenBucket, burst_size_for
from .tombstones import Tombstones

PB_QUEUE = tasks_v2.Queue.pb()
PB_TASK = tasks_v2.Task.pb()

_State = tasks_v2.Queue.State
# Plain ints (by name): the scheduler compares a queue's state on every dispatch.
RUNNING, PAUSED, DISABLED = int(_State.RUNNING), int(_State.PAUSED), int(_State.DISABLED)

# Defaults commonly reported for queues created through the API (not officially published).
DEFAULT_RATE = 500.0
DEFAULT_CONCURRENT = 1000
DEFAULT_MAX_ATTEMPTS = 100
DEFAULT_MIN_BACKOFF = 0.1
DEFAULT_MAX_BACKOFF = 3600.0
DEFAULT_MAX_DOUBLINGS = 16


class TaskRecord:
    """A task in the engine: its protobuf (as ``GetTask`` FULL would show it) and delivery state."""

    __slots__ = (
        "alive",
        "eta",
        "executions",
        "first_attempt_time",
        "forced",
        "id",
        "in_flight",
        "pb",
        "previous_response",
        "queue",
        "retry_reason",
        "seq",
        "version",
    )

    def __init__(self, pb: Any, queue: QueueRecord, task_id: str, seq: int, eta: float | None = None) -> None:
        self.pb = pb
        self.queue = queue
        self.id = task_id
        self.seq = seq
        self.version = seq
        self.eta = to_seconds(pb.schedule_time) if eta is None else eta
        self.alive = True
        self.in_flight = False
        self.forced = False
        self.executions = 0
        self.first_attempt_time: float | None = None
        self.previous_response: int | None = None
        self.retry_reason: str | None = None

    def reschedule(self, eta: float, version: int) -> None:
        self.eta = eta
        self.version = version
        set_seconds(self.pb.schedule_time, eta)
        heapq.heappush(self.queue.heap, (eta, version, self))


class QueueRecord:
    """A queue in the engine: its protobuf, its tasks, and its dispatch state.

    ``tasks`` finds a task by id; ``order`` lists them in creation order (ascending ``seq``) so that a
    ListTasks page resumes where the last one stopped without walking the queue from its start. Removed
    tasks stay in ``order`` (not alive) until they are more than half of it, then it is compacted.
    """

    __slots__ = (
        "bucket",
        "dead",
        "heap",
        "hold_until",
        "in_flight",
        "name",
        "order",
        "pb",
        "tasks",
        "wake_at",
    )

    def __init__(self, pb: Any, now: float) -> None:
        self.pb = pb
        self.name: str = pb.name  # a queue's name never changes; read on every create and dispatch
        self.tasks: dict[str, TaskRecord] = {}
        self.order: list[TaskRecord] = []
        self.dead = 0
        self.heap: list[tuple[float, int, TaskRecord]] = []
        rate = pb.rate_limits.max_dispatches_per_second
        self.bucket = TokenBucket(rate, pb.rate_limits.max_burst_size, now)
        self.in_flight = 0
        self.hold_until = 0.0
        self.wake_at: float | None = None
        """When the scheduler's wake-up entry for this queue is due (None: it has none)."""

    def add(self, record: TaskRecord) -> None:
        self.tasks[record.id] = record
        self.order.append(record)
        heapq.heappush(self.heap, (record.eta, record.version, record))

    def remove(self, record: TaskRecord) -> None:
        del self.tasks[record.id]
        self.dead += 1
        # Compacted as soon as the removed outnumber the live: still amortised O(1) (a compaction walks at
        # most twice the removals since the last one), and the records kept for a removed task (each with
        # its protobuf, about 2 KB) never outnumber the live ones. A queue that empties keeps none.
        order = self.order
        if self.dead * 2 > len(order):
            self.order = [r for r in order if r.alive] if self.tasks else []
            self.dead = 0
        # The heap lets go of entries only as they reach its top: a task deleted long before its time, or
        # run early with RunTask, leaves one behind. Rebuilt once those outnumber the live tasks (each live
        # task has at most one entry that counts), so they stay bounded by the tasks there are.
        heap = self.heap
        if len(heap) > 2 * len(self.tasks) + 64:
            self.heap = [e for e in heap if e[2].alive and e[2].version == e[1] and not e[2].in_flight]
            heapq.heapify(self.heap)

    def clear(self) -> None:
        self.tasks.clear()
        self.order.clear()
        self.heap.clear()
        self.dead = 0

    def tasks_after(self, seq: int) -> Iterator[TaskRecord]:
        """The live tasks created after the one numbered ``seq``, in creation order."""
        order = self.order
        for index in range(bisect.bisect_right(order, seq, key=_seq), len(order)):
            record = order[index]
            if record.alive:
                yield record

    def config_changed(self, now: float) -> None:
        limits = self.pb.rate_limits
        self.bucket.reconfigure(limits.max_dispatches_per_second, limits.max_burst_size, now)

    def top(self) -> TaskRecord | None:
        """The task due first, dropping heap entries that no longer count (deleted, rescheduled, running)."""
        heap = self.heap
        while heap:
            _, version, record = heap[0]
            if record.alive and record.version == version and not record.in_flight:
                return record
            heapq.heappop(heap)
        return None


def _seq(record: TaskRecord) -> int:
    return record.seq


def fill_queue_defaults(queue: Any) -> None:
    """What the service picks for the fields a new queue leaves out."""
    limits = queue.rate_limits
    if not limits.max_dispatches_per_second:
        limits.max_dispatches_per_second = DEFAULT_RATE
    if not limits.max_concurrent_dispatches:
        limits.max_concurrent_dispatches = DEFAULT_CONCURRENT
    limits.max_burst_size = burst_size_for(limits.max_dispatches_per_second)
    retry = queue.retry_config
    if not retry.max_attempts:
        retry.max_attempts = DEFAULT_MAX_ATTEMPTS
    if not retry.HasField("min_backoff"):
        set_seconds(retry.min_backoff, DEFAULT_MIN_BACKOFF)
    if not retry.HasField("max_backoff"):
        set_seconds(retry.max_backoff, DEFAULT_MAX_BACKOFF)
    if not retry.max_doublings:
        retry.max_doublings = DEFAULT_MAX_DOUBLINGS
    if not retry.HasField("max_retry_duration"):
        retry.max_retry_duration.seconds = 0
    if not queue.state:
        queue.state = RUNNING


def effective_retry(task: Any, queue: Any) -> tuple[int, float, float, float, int]:
    """``(max_attempts, max_retry_duration, min_backoff, max_backoff, max_doublings)`` for a task:
    the fields its own ``retry_config`` sets, the queue's for the rest."""
    queue_config = queue.retry_config
    own = task.retry_config if task.HasField("retry_config") else None

    def pick(name: str) -> Any:
        if own is not None:
            value = getattr(own, name)
            if name in _DURATIONS:
                if own.HasField(name):
                    return to_seconds(value)
            elif value:
                return value
        value = getattr(queue_config, name)
        return to_seconds(value) if name in _DURATIONS else value

    return (
        int(pick("max_attempts")),
        float(pick("max_retry_duration")),
        float(pick("min_backoff")),
        float(pick("max_backoff")),
        int(pick("max_doublings")),
    )


_DURATIONS = frozenset({"max_retry_duration", "min_backoff", "max_backoff"})


def tombstone_key(name: str) -> int:
    """What a tombstone keeps of a name: its 64-bit hash. An hour of names at thousands a second is
    hundreds of thousands of tombstones; an int keeps each small (see
    :class:`~cloudtasks_kit.engine.tombstones.Tombstones`), and two names colliding (about one in 10**13
    at a million tombstones) would only refuse one create."""
    return hash(name)


def _no_wake(queue: QueueRecord) -> bool:
    return True  # no scheduler to ask: anything may have become due


class ServiceState:
    """What the service holds: queues (with their tasks), and name tombstones.

    Shared by :class:`~cloudtasks_kit.engine.engine.Engine` (the RPCs) and
    :class:`~cloudtasks_kit.engine.scheduler.Scheduler` (dispatch); neither reaches into the other.
    """

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.queues: dict[str, QueueRecord] = {}
        self.task_tombstones = Tombstones()
        self.queue_tombstones = Tombstones()
        self.counter = itertools.count(1)
        self.task_tombstone_window = 3600.0
        self.on_change: Callable[[], None] | None = None
        """Called when something may have become due sooner (a new task, a resumed queue)."""
        self.wake: Callable[[QueueRecord], bool] = _no_wake
        """Called with a queue whose next due moment may have moved (the scheduler's hook); True if it
        moved earlier."""
        self.journal: Journal = NO_JOURNAL
        """Hears every change, for a store to keep (see :mod:`cloudtasks_kit.engine.journal`)."""

    def changed(self, queue: QueueRecord | None = None) -> None:
        """Something changed that may make a task due sooner: in ``queue``, or in the RunTask line.

        The driver hears of it (``on_change``) only if the queue's next due moment moved earlier: a task
        added to a paused queue, or behind one already due sooner, wakes nobody.
        """
        if (queue is None or self.wake(queue)) and self.on_change is not None:
            self.on_change()

    def recently(self, tombstones: Tombstones, name: str) -> bool:
        """Whether ``name`` was used within its tombstone window (forgetting the expired ones first)."""
        now = self.now()
        tombstones.forget_expired(now)
        expiry = tombstones.expiry(tombstone_key(name))
        return expiry is not None and expiry > now

    def bury(self, tombstones: Tombstones, name: str, window: float) -> float:
        """Keep ``name`` taken for ``window`` seconds; returns when it is free again.

        Each kind of tombstone has one window, so the order they are buried in is expiry order: the
        expired ones are dropped from its front as new ones come, and what is kept grows with the names
        used in the last window, not with all names ever used."""
        now = self.now()
        tombstones.forget_expired(now)
        expiry = now + window
        tombstones.add(tombstone_key(name), expiry)
        return expiry

    def delete_task(self, record: TaskRecord) -> None:
        """Remove a task (deleted, succeeded or out of retries); its name stays taken for the window."""
        record.alive = False
        record.queue.remove(record)
        expiry = self.bury(self.task_tombstones, record.pb.name, self.task_tombstone_window)
        self.journal.task_deleted(record, expiry)
