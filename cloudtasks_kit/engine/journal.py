"""The journal: what the engine tells a store at each change of its state, and how it is put back.

The engine holds its state in memory. A :class:`Journal` hears of every change as it happens (a queue
created, changed or deleted; a task created, started, finished with a retry due, rescheduled or deleted,
with the expiry of the tombstone its name leaves) and :meth:`Journal.commit` is called once the change
is whole (after each call of the API, and after the driver starts or finishes attempts). The default,
:data:`NO_JOURNAL`, does nothing, so the fake and the in-memory emulator pay only a method call.

The store itself does I/O, so it lives outside the engine (the emulator's
:mod:`cloudtasks_kit.emulator.persistence`); :func:`restore` puts what it kept back into an engine.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import Engine
    from .state import QueueRecord, TaskRecord

__all__ = ["NO_JOURNAL", "Journal", "SavedQueue", "SavedTask", "SavedTombstone", "restore"]


class Journal:
    """Hears every change of an engine's state. Each method does nothing here; a store overrides them.

    The records passed are the engine's own: read them, do not keep or change them.
    """

    def queue_created(self, queue: QueueRecord) -> None:
        """A queue was created (CreateQueue, UpdateQueue of a missing queue, or auto-creation)."""

    def queue_changed(self, queue: QueueRecord) -> None:
        """A queue's protobuf changed: its config (UpdateQueue), its state (pause, resume, disable) or
        its purge time (PurgeQueue, whose tasks are reported deleted one by one just before)."""

    def queue_deleted(self, name: str, tombstone_expiry: float) -> None:
        """A queue was deleted with its tasks; its name cannot be reused until ``tombstone_expiry``."""

    def task_created(self, task: TaskRecord) -> None:
        """A task was added (CreateTask, BatchCreateTasks, BufferTask)."""

    def task_started(self, task: TaskRecord) -> None:
        """An attempt started: ``dispatch_count`` and the attempt times changed."""

    def task_finished(self, task: TaskRecord) -> None:
        """An attempt failed and the task stays, with its retry scheduled and its bookkeeping updated."""

    def task_rescheduled(self, task: TaskRecord) -> None:
        """A task was made due now out of turn (RunTask)."""

    def task_deleted(self, task: TaskRecord, tombstone_expiry: float) -> None:
        """A task is gone (deleted, purged, succeeded or out of retries); its name is taken until the
        expiry."""

    def commit(self) -> None:
        """Make what was reported so far durable: called before an API call answers."""


NO_JOURNAL = Journal()
"""The journal that keeps nothing: the engine's default."""


@dataclasses.dataclass(frozen=True)
class SavedQueue:
    """A queue as a store kept it: its serialized ``Queue`` protobuf."""

    pb: bytes


@dataclasses.dataclass(frozen=True)
class SavedTask:
    """A task as a store kept it: its FULL ``Task`` protobuf and the engine's delivery bookkeeping."""

    queue: str
    task_id: str
    seq: int
    pb: bytes
    executions: int = 0
    first_attempt_time: float | None = None
    previous_response: int | None = None
    retry_reason: str | None = None
    forced: bool = False


@dataclasses.dataclass(frozen=True)
class SavedTombstone:
    """A name that stays taken until ``expiry`` (seconds since the epoch); ``kind`` is task or queue."""

    kind: str
    name: str
    expiry: float


def restore(
    engine: Engine,
    queues: Iterable[SavedQueue],
    tasks: Iterable[SavedTask],
    tombstones: Iterable[SavedTombstone],
) -> None:
    """Put a store's queues, tasks and tombstones into a fresh ``engine``, without telling its journal.

    Tasks come back in ``seq`` order and keep their ``seq`` (ListTasks order); new ones number after
    them. A task that was in flight when the store was last written is simply due again: its attempt
    never finished, and ``dispatch_count`` already counts it, so the retry count carries on.
    """
    from .state import PB_QUEUE, PB_TASK, QueueRecord, TaskRecord, tombstone_key  # state.py imports this

    state = engine.state
    now = engine.clock.now()
    for saved in queues:
        pb = PB_QUEUE()
        pb.ParseFromString(saved.pb)
        state.queues[pb.name] = QueueRecord(pb, now)
    top = 0
    forced: list[TaskRecord] = []
    for saved_task in sorted(tasks, key=lambda t: t.seq):
        queue = state.queues.get(saved_task.queue)
        if queue is None:
            continue  # the queue's row went first; its tasks went with it
        pb = PB_TASK()
        pb.ParseFromString(saved_task.pb)
        record = TaskRecord(pb, queue, saved_task.task_id, saved_task.seq)
        record.executions = saved_task.executions
        record.first_attempt_time = saved_task.first_attempt_time
        record.previous_response = saved_task.previous_response
        record.retry_reason = saved_task.retry_reason
        queue.add(record)
        if saved_task.forced:
            forced.append(record)
        top = max(top, saved_task.seq)
    state.counter = itertools.count(top + 1)
    # Each kind of tombstone is kept in expiry order (see ServiceState.bury).
    for stone in sorted(tombstones, key=lambda stone: stone.expiry):
        if stone.expiry > now:
            target = state.task_tombstones if stone.kind == "task" else state.queue_tombstones
            target.add(tombstone_key(stone.name), stone.expiry)
    for queue in state.queues.values():
        state.changed(queue)
    for record in forced:  # RunTask'd and never finished: it goes again, whatever its queue's state
        engine.scheduler.rerun(record)
