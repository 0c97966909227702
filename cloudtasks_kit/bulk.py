"""Bulk creates: BatchCreateTasks in chunks of at most 100 and under the request size limit, a result
per input, in input order.

Nothing is dropped: a spec that fails the rules, a task the service refuses, and a chunk whose every
attempt failed each come back as a :class:`CreateResult` with the error. Chunks are cut by count (100)
and by bytes (:attr:`~cloudtasks_kit.Limits.max_request_bytes`, less a sixteenth); a request the
receiver still finds too large is halved, and a task too large alone is that item's error, never
retried. Chunks of tasks with ids are retried under the retry policy (its ``retry_on`` alone says which
errors), re-sending only the items still failing; an item found ALREADY_EXISTS after a call whose answer
was lost is resolved as a single create is (see docs/reliability.md). Chunks of tasks without ids are not
retried, unless the policy allows duplicates.

The chunk logic is here once; the sync and async facades only run the chunks (threads or tasks).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.cloud import tasks_v2

from . import errors, rules, tracing
from ._operations import create_request, found_taken
from ._runner import Op, Plan, arun_plan, call, run_plan
from .appengine import AppEngineTask
from .retry import RetryPolicy
from .tasks import CreateOutcome, Task, TaskSpec
from .transports.base import AsyncTransport, Transport
from .transports.calls import BATCH_CREATE_TASKS, BatchCreateResult

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


Item = tuple[int, Any]
"""An input's index and its raw ``CreateTaskRequest``."""


class Chunk:
    """Requests to one queue, all with ids or all without, sent in one BatchCreateTasks call (at most 100,
    and under the byte budget), and what became of each.

    A task may be retried only while the policy says so, and never for an error saying the request was
    too large. An item found ALREADY_EXISTS after a call that got no answer (so it may have landed) is
    resolved as a single create is (:func:`~cloudtasks_kit._operations.found_taken`); one found taken
    when every earlier call for it was answered was used before: :class:`~cloudtasks_kit.AlreadyExists`.
    """

    def __init__(
        self, queue_name: str, items: list[Item], named: bool, *, started: float, limits: rules.Limits
    ) -> None:
        self.queue_name = queue_name
        self.pending = items
        self.named = named
        self.started = started
        self.limits = limits
        self.results: dict[int, CreateResult] = {}
        self._unanswered: set[int] = set()  # items sent in a call that got no answer: they may have landed
        # One request id per set of items until that call is answered: a call retried after a lost answer
        # is the same operation to the service, which then answers with what the first one did.
        self._request_ids: dict[tuple[int, ...], str] = {}
        self._retry_on: tuple[type[errors.ApiError], ...] = ()
        self.trace_parent = tracing.capture()  # the caller's trace context, here where the caller runs

    def plan(self, policy: RetryPolicy | None) -> Plan[None]:
        plan = Plan(policy, self.named, self._attempt, tracing.for_chunk(self, self.limits))
        # What is retried comes from the policy alone (the runner retries on the same classes).
        self._retry_on = policy.retry_on if plan.retries and policy is not None else ()
        return plan

    def _retryable(self, error: errors.CloudTasksError) -> bool:
        return isinstance(error, self._retry_on) and not errors.is_too_large(error)

    def _request(self, part: list[Item]) -> tasks_v2.BatchCreateTasksRequest:
        key = tuple(index for index, _ in part)
        request_id = self._request_ids.setdefault(key, uuid.uuid4().hex)
        request = tasks_v2.BatchCreateTasksRequest(parent=self.queue_name, request_id=request_id)
        request.requests.extend(tasks_v2.CreateTaskRequest.wrap(raw) for _, raw in part)
        return request

    def _attempt(self, retried: bool) -> Op[None]:
        """Send the pending items; keep for the next attempt those that failed with a retryable error."""
        still: list[Item] = []
        first_retryable: errors.CloudTasksError | None = None
        parts = [self.pending]
        while parts:
            part = parts.pop()
            try:
                outcome = yield from call(BATCH_CREATE_TASKS, self._request(part))
            except errors.CloudTasksError as exc:
                if errors.is_too_large(exc) and len(part) > 1:
                    # Over the receiver's limit despite the byte budget (a transport that encodes larger,
                    # a smaller limit): send each half, down to the one task that is too large alone.
                    half = len(part) // 2
                    parts += [part[half:], part[:half]]
                    continue
                if not errors.is_too_large(exc):
                    self._unanswered.update(index for index, _ in part)
                for index, _ in part:
                    self.results[index] = CreateResult(index, None, exc)
                if self._retryable(exc):
                    still += part
                    first_retryable = first_retryable or exc
                continue
            self._request_ids.pop(tuple(index for index, _ in part), None)  # answered: a re-send is new
            failed = yield from self._record(part, outcome)
            for item, error in failed:
                if self._retryable(error):
                    still.append(item)
                    first_retryable = first_retryable or error
        self.pending = sorted(still, key=lambda item: item[0])
        if first_retryable is not None:  # the runner retries (or gives up) on it
            raise first_retryable

    def _record(
        self, part: list[Item], outcome: BatchCreateResult
    ) -> Op[list[tuple[Item, errors.CloudTasksError]]]:
        """Record what the service answered for each item of ``part``; the failed ones and their errors."""
        created = iter(outcome.tasks)
        failed: list[tuple[Item, errors.CloudTasksError]] = []
        for position, (index, raw) in enumerate(part):
            failure = outcome.failures.get(position)
            if failure is None:
                task = Task.from_message(next(created), CreateOutcome.CREATED)
                self.results[index] = CreateResult(index, task, None)
                continue
            error: errors.CloudTasksError = errors.api_error(errors.StatusCode(failure[0]), failure[1])
            if isinstance(error, errors.AlreadyExists) and index in self._unanswered:
                try:
                    task = yield from found_taken(raw.task.name, self.started, self.limits, error)
                except errors.AlreadyExists as used_before:
                    error = used_before
                else:
                    self.results[index] = CreateResult(index, task, None)
                    continue
            self.results[index] = CreateResult(index, None, error)
            failed.append(((index, raw), error))
        return failed

    def fail(self, error: errors.CloudTasksError) -> None:
        """Record ``error`` for every pending request that has no result yet (the chunk gave up)."""
        for index, _ in self.pending:
            self.results.setdefault(index, CreateResult(index, None, error))


class Bulk:
    """One bulk create: the results so far and the chunks still to send."""

    def __init__(
        self,
        queue_name: str,
        specs: Iterable[TaskSpec | AppEngineTask | Mapping[str, Any]],
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
    queue_name: str,
    specs: Iterable[TaskSpec | AppEngineTask | Mapping[str, Any]],
    *,
    now: float,
    limits: rules.Limits,
) -> tuple[dict[int, CreateResult], list[Chunk], int]:
    """Check and build every spec (bad ones become results at once) and cut the rest into chunks."""
    results: dict[int, CreateResult] = {}
    total = 0
    named: list[Item] = []
    unnamed: list[Item] = []
    for index, spec in enumerate(specs):
        total += 1
        try:
            ready = spec if isinstance(spec, (TaskSpec, AppEngineTask)) else TaskSpec.model_validate(spec)
            request = create_request(queue_name, ready, now=now, limits=limits)
        except errors.CloudTasksError as exc:
            results[index] = CreateResult(index, None, exc)
            continue
        except (ValueError, TypeError, RecursionError) as exc:
            # A spec hostile enough to break a library below the rules (protobuf, pydantic): its own
            # error, never the whole bulk's.
            reason = f"could not be built ({type(exc).__name__}: {str(exc)[:200]})"
            results[index] = CreateResult(index, None, errors.ValidationError("task spec", index, reason))
            continue
        (named if request.task.name else unnamed).append((index, request))
    budget = batch_budget(limits)
    chunks = [
        Chunk(queue_name, part, group is named, started=now, limits=limits)
        for group in (named, unnamed)
        for part in cut(group, budget, overhead=len(queue_name) + _REQUEST_OVERHEAD)
    ]
    return results, chunks, total


# A BatchCreateTasksRequest's own fields besides its requests: the parent (a tag, a length, the name) and
# the request id (a tag, a length, 32 hex digits), with room to spare.
_REQUEST_OVERHEAD = 64


def batch_budget(limits: rules.Limits) -> int:
    """The bytes a BatchCreateTasks request may take: a sixteenth under ``limits.max_request_bytes``
    (256 KiB of headroom under gRPC's 4 MiB)."""
    return limits.max_request_bytes - limits.max_request_bytes // 16


def cut(items: list[Item], budget: int, *, overhead: int = _REQUEST_OVERHEAD) -> list[list[Item]]:
    """``items`` in order, in parts of at most 100 whose BatchCreateTasksRequest stays within ``budget``
    bytes. A task too large for the budget alone goes alone: if the receiver refuses it, that is its own
    error, not its neighbours'."""
    parts: list[list[Item]] = []
    part: list[Item] = []
    size = overhead
    for item in items:
        entry = _entry_bytes(item[1].ByteSize())
        if part and (len(part) == rules.BATCH_CREATE_MAX or size + entry > budget):
            parts.append(part)
            part, size = [], overhead
        part.append(item)
        size += entry
    if part:
        parts.append(part)
    return parts


def _entry_bytes(size: int) -> int:
    """The bytes one embedded request of ``size`` bytes takes in the batch: its tag, its length, itself."""
    return 1 + _varint_bytes(size) + size


def _varint_bytes(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)
