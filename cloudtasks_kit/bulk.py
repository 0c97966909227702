"""Bulk creates: BatchCreateTasks in chunks of at most 100, a result per input, in input order.

Nothing is dropped: a spec that fails the rules, a task the service refuses, and a chunk whose every
attempt failed each come back as a :class:`CreateResult` with the error. Chunks of tasks with ids are
retried under the retry policy (an item the service answers ALREADY_EXISTS on a retry landed earlier
and is fetched); chunks of tasks without ids are not, unless the policy allows duplicates. Only the
items still failing with a retryable status are sent again.

The chunk logic is here once; the sync and async facades only run the chunks (threads or tasks).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.cloud import tasks_v2

from . import errors, rules, tracing
from ._operations import create_request, landed
from ._runner import Op, Plan, arun_plan, call, run_plan
from .retry import RetryPolicy
from .tasks import Task, TaskSpec
from .transports.base import AsyncTransport, Transport
from .transports.calls import BATCH_CREATE_TASKS

__all__ = ["Bulk", "CreateResult", "Progress"]

Progress = Callable[[int, int], None]
"""``on_progress(done, total)``: called after each chunk, from the caller's thread or task."""


@dataclasses.dataclass(frozen=True)
class CreateResult:
    """What became of one input of a bulk create: the created task, or the error."""

    index: int
    task: Task | None
    error: errors.CloudTasksError | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        outcome = f"task={self.task.id!r}" if self.task is not None else f"error={self.error!s}"
        return f"CreateResult(index={self.index}, {outcome})"


class Chunk:
    """At most 100 requests to one queue, all with ids or all without, and what became of each."""

    def __init__(self, queue_name: str, items: list[tuple[int, Any]], named: bool) -> None:
        self.queue_name = queue_name
        self.pending = items
        self.named = named
        self.results: dict[int, CreateResult] = {}
        self._request_id = uuid.uuid4().hex
        self.trace_parent = tracing.capture()  # the caller's trace context, here where the caller runs

    def plan(self, policy: RetryPolicy | None, limits: rules.Limits = rules.DEFAULT_LIMITS) -> Plan[None]:
        return Plan(policy, self.named, self._attempt, tracing.for_chunk(self, limits))

    def _attempt(self, retried: bool) -> Op[None]:
        request = tasks_v2.BatchCreateTasksRequest(parent=self.queue_name, request_id=self._request_id)
        request.requests.extend(tasks_v2.CreateTaskRequest.wrap(r) for _, r in self.pending)
        outcome = yield from call(BATCH_CREATE_TASKS, request)
        created = iter(outcome.tasks)
        still: list[tuple[int, Any]] = []
        first_retryable: errors.ApiError | None = None
        for position, (index, raw) in enumerate(self.pending):
            failure = outcome.failures.get(position)
            if failure is None:
                self.results[index] = CreateResult(index, Task.from_message(next(created)), None)
                continue
            error = errors.api_error(errors.StatusCode(failure[0]), failure[1])
            if retried and isinstance(error, errors.AlreadyExists):
                self.results[index] = CreateResult(index, (yield from landed(raw.task.name)), None)
                continue
            self.results[index] = CreateResult(index, None, error)
            if isinstance(error, _RETRYABLE):
                still.append((index, raw))
                first_retryable = first_retryable or error
        if still:  # send only those again, as a new operation
            self.pending, self._request_id = still, uuid.uuid4().hex
            assert first_retryable is not None
            raise first_retryable
        self.pending = []

    def fail(self, error: errors.CloudTasksError) -> None:
        """Record ``error`` for every request that has no result yet (the chunk gave up)."""
        for index, _ in self.pending:
            if index not in self.results or self.results[index].ok:
                self.results[index] = CreateResult(index, None, error)


_RETRYABLE = (
    errors.Unavailable,
    errors.DeadlineExceeded,
    errors.Internal,
    errors.Aborted,
    errors.ResourceExhausted,
)


class Bulk:
    """One bulk create: the results so far and the chunks still to send."""

    def __init__(
        self,
        queue_name: str,
        specs: Iterable[TaskSpec | Mapping[str, Any]],
        *,
        now: float,
        limits: rules.Limits,
        policy: RetryPolicy | None,
        on_progress: Progress | None,
    ) -> None:
        self.results, self.chunks, self.total = prepare(queue_name, specs, now=now, limits=limits)
        self.policy = policy
        self._on_progress = on_progress
        self._done = len(self.results)

    def run_chunk(self, transport: Transport, chunk: Chunk) -> None:
        try:
            run_plan(transport, chunk.plan(self.policy))
        except errors.CloudTasksError as exc:
            chunk.fail(exc)

    async def arun_chunk(self, transport: AsyncTransport | Transport, chunk: Chunk) -> None:
        try:
            await arun_plan(transport, chunk.plan(self.policy))
        except errors.CloudTasksError as exc:
            chunk.fail(exc)

    def progressed(self, chunk: Chunk) -> None:
        """Count a finished chunk and tell the progress callback."""
        self._done += len(chunk.results)
        if self._on_progress is not None:
            self._on_progress(self._done, self.total)

    def outcome(self) -> list[CreateResult]:
        """A result per input, in input order."""
        for chunk in self.chunks:
            self.results.update(chunk.results)
        return [self.results[index] for index in range(self.total)]


def prepare(
    queue_name: str, specs: Iterable[TaskSpec | Mapping[str, Any]], *, now: float, limits: rules.Limits
) -> tuple[dict[int, CreateResult], list[Chunk], int]:
    """Check and build every spec (bad ones become results at once) and cut the rest into chunks."""
    results: dict[int, CreateResult] = {}
    total = 0
    named: list[tuple[int, Any]] = []
    unnamed: list[tuple[int, Any]] = []
    for index, spec in enumerate(specs):
        total += 1
        try:
            ready = spec if isinstance(spec, TaskSpec) else TaskSpec.model_validate(spec)
            request = create_request(queue_name, ready, now=now, limits=limits)
        except errors.CloudTasksError as exc:
            results[index] = CreateResult(index, None, exc)
            continue
        (named if request.task.name else unnamed).append((index, request))
    size = rules.BATCH_CREATE_MAX
    chunks = [
        Chunk(queue_name, group[i : i + size], group is named)
        for group in (named, unnamed)
        for i in range(0, len(group), size)
    ]
    return results, chunks, total
