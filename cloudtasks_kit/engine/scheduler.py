"""Scheduling attempts: which start now, what each sends, and what its result does to the task.

The engine's :attr:`~cloudtasks_kit.engine.engine.Engine.scheduler`, beside its RPCs: a driver calls
:meth:`Scheduler.take_due`, sends each :class:`~cloudtasks_kit.engine.attempts.AttemptRequest`, and
reports with :meth:`Scheduler.finish`; :meth:`Scheduler.next_due` says when to look again.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

from .. import rules
from .._convert import set_seconds, to_seconds
from . import attempts
from .attempts import AttemptOutcome, AttemptRequest, AttemptResult
from .clock import Clock
from .scheduling import backoff, retries_exhausted
from .state import RUNNING, QueueRecord, ServiceState, TaskRecord, effective_retry
from .tokens import TokenSigner, oauth_token

__all__ = ["Scheduler"]

_LAST_TIMESTAMP = 253_402_300_799.0  # 9999-12-31T23:59:59Z
log = logging.getLogger("cloudtasks_kit.engine")
_MAX_FAILED_NAMES = 10_000


class Scheduler:
    """Which attempts start when, and what their results do to the tasks: the engine's dispatch half.

    Args:
        state: the service state it shares with the engine's RPCs.
        clock: where "now" comes from.
        signer: gives the key that signs OIDC tokens (made on first use).
        max_retry_after: the longest wait a ``Retry-After`` answer may impose, in seconds.
    """

    def __init__(
        self, state: ServiceState, clock: Clock, signer: Callable[[], TokenSigner], max_retry_after: float
    ) -> None:
        self._state = state
        self.clock = clock
        self._signer = signer
        self.max_retry_after = max_retry_after
        # Queues that may have something due, by when: (time, tie-breaker, queue). An entry counts only
        # while it matches the queue's wake_at; the others are dropped when they reach the top. So the
        # work per call does not grow with the number of queues that have nothing due.
        self._wakeups: list[tuple[float, int, QueueRecord]] = []
        self._tie = itertools.count()
        # Tasks whose start failed, logged once each; the oldest forgotten past a bound (all-day runs).
        self._failed_names: dict[str, None] = {}
        self._started: collections.deque[AttemptRequest] = collections.deque()
        """Attempts RunTask started, waiting for a driver to send them."""
        self._rerun: collections.deque[TaskRecord] = collections.deque()
        """RunTask'd tasks restored from a store, to start at the next :meth:`take_due`."""
        state.wake = self.wake

    def wake(self, queue: QueueRecord) -> bool:
        """Note that ``queue``'s next due moment may have moved earlier (a task added, a resume...).

        True if it did: the queue has a new, earlier wake-up entry (a driver asleep until the one before
        must look again). Every entry is pushed here, so a driver that was told of each True and slept
        until :meth:`next_due` never oversleeps.
        """
        if queue.pb.state != RUNNING or queue.in_flight >= queue.pb.rate_limits.max_concurrent_dispatches:
            return False  # a resume or a finished attempt wakes it again
        record = queue.top()
        if record is None:
            return False
        when = max(record.eta, queue.hold_until, queue.bucket.next_token_at(self.clock.now()))
        if queue.wake_at is None or when < queue.wake_at:
            queue.wake_at = when
            heapq.heappush(self._wakeups, (when, next(self._tie), queue))
            return True
        return False

    def _next_wakeup(self) -> tuple[float, QueueRecord] | None:
        """The earliest entry that still counts, dropping the stale ones above it."""
        wakeups, queues = self._wakeups, self._state.queues
        while wakeups:
            when, _, queue = wakeups[0]
            if queue.wake_at == when and queues.get(queue.name) is queue:
                return when, queue
            heapq.heappop(wakeups)
        return None

    def start_now(self, record: TaskRecord) -> None:
        """Start an attempt of ``record`` at once, whatever its queue's state and limits (RunTask).

        Started here rather than at the next :meth:`take_due`, so RunTask can answer with the task as
        dispatched (``dispatch_count`` counting this attempt), as its reference describes; the attempt
        is handed to the driver by the next :meth:`take_due`.
        """
        now = self.clock.now()
        record.forced = True
        record.reschedule(now, next(self._state.counter))
        self._start(record, now, forced=True, into=self._started)
        self._state.changed()

    def rerun(self, record: TaskRecord) -> None:
        """Start ``record`` at the next :meth:`take_due`, whatever its queue's state and limits: a RunTask'd
        task whose attempt a restart cut off (restored as it was; the attempt starts when a driver asks)."""
        record.forced = True
        self._rerun.append(record)

    def take_due(self, limit: int | None = None) -> list[AttemptRequest]:
        """Start the attempts that are due now, within each queue's rate and concurrency limits.

        Attempts RunTask started go first (they ignore both limits and the paused state).
        """
        now = self.clock.now()
        out: list[AttemptRequest] = []
        while self._started and (limit is None or len(out) < limit):
            out.append(self._started.popleft())
        while self._rerun and (limit is None or len(out) < limit):
            record = self._rerun.popleft()
            if record.alive and not record.in_flight:
                self._start(record, now, forced=True, into=out)
        while limit is None or len(out) < limit:
            entry = self._next_wakeup()
            if entry is None or entry[0] > now:
                break
            heapq.heappop(self._wakeups)
            queue = entry[1]
            queue.wake_at = None
            if queue.pb.state == RUNNING and now >= queue.hold_until:
                cap = queue.pb.rate_limits.max_concurrent_dispatches
                while limit is None or len(out) < limit:
                    due = queue.top()
                    if due is None or due.eta > now or queue.in_flight >= cap or not queue.bucket.take(now):
                        break
                    heapq.heappop(queue.heap)
                    self._start(due, now, forced=False, into=out)
            self.wake(queue)
        return out

    def next_due(self) -> float | None:
        """When :meth:`take_due` may next return something (None: nothing until a call or a finish)."""
        if self._started or self._rerun:
            return self.clock.now()
        entry = self._next_wakeup()
        return None if entry is None else entry[0]

    def dispatchable(self) -> int:
        """Tasks that will be dispatched without anyone acting: in RUNNING queues, or RunTask'd."""
        return (
            len(self._started)
            + len(self._rerun)
            + sum(len(q.tasks) for q in self._state.queues.values() if q.pb.state == RUNNING)
        )

    def _start(
        self,
        record: TaskRecord,
        now: float,
        *,
        forced: bool,
        into: list[AttemptRequest] | collections.deque[AttemptRequest],
    ) -> None:
        """Start an attempt of ``record`` and add it to ``into``. Should building its request fail (a bug,
        or a task no check foresaw), the attempt is marked ``failed`` (the drivers record it as failed
        without sending anything) and the task is retried by its rules: one task never stops the others."""
        try:
            request: tuple[str, str, dict[str, str], float] | Exception = self._request_of(record)
        except Exception as exc:
            request = exc
        task, queue = record.pb, record.queue
        retry_count = task.dispatch_count
        task.dispatch_count += 1
        if record.first_attempt_time is None:
            record.first_attempt_time = now
            set_seconds(task.first_attempt.schedule_time, record.eta)
            set_seconds(task.first_attempt.dispatch_time, now)
        task.last_attempt.Clear()
        set_seconds(task.last_attempt.schedule_time, record.eta)
        set_seconds(task.last_attempt.dispatch_time, now)
        record.in_flight = True
        queue.in_flight += 1
        self._state.journal.task_started(record)
        fallback: tuple[str, str, dict[str, str], float] = ("POST", str(task.http_request.url), {}, 0.0)
        method, url, headers, deadline = fallback if isinstance(request, Exception) else request
        attempt = AttemptRequest(
            task_name=task.name,
            queue_name=queue.name,
            method=method,
            url=url,
            headers=headers,
            body=attempts.effective_body(task, queue.pb),
            deadline=deadline,
            retry_count=retry_count,
            schedule_time=record.eta,
            dispatch_time=now,
            forced=forced,
            failed=f"INTERNAL: {type(request).__name__}" if isinstance(request, Exception) else None,
            record=record,
        )
        into.append(attempt)
        if isinstance(request, Exception) and task.name not in self._failed_names:
            self._failed_names[task.name] = None
            if len(self._failed_names) > _MAX_FAILED_NAMES:  # one forgotten may be logged again, once
                del self._failed_names[next(iter(self._failed_names))]
            log.error(
                "could not start an attempt of task %s (queue %s)", task.name, queue.name, exc_info=request
            )

    def _request_of(self, record: TaskRecord) -> tuple[str, str, dict[str, str], float]:
        """The method, URL, headers and deadline of ``record``'s next attempt (before it counts as made)."""
        task, queue = record.pb, record.queue
        method, url = attempts.effective_target(task, queue.pb)
        if attempts.is_app_engine(task):
            headers = attempts.build_app_engine_headers(
                task,
                queue.pb,
                retry_count=task.dispatch_count,
                execution_count=record.executions,
                previous_response=record.previous_response,
                retry_reason=record.retry_reason,
                eta=record.eta,
            )
        else:
            headers = attempts.build_headers(
                task,
                queue.pb,
                retry_count=task.dispatch_count,
                execution_count=record.executions,
                previous_response=record.previous_response,
                retry_reason=record.retry_reason,
                eta=record.eta,
                authorization=self._authorization(task, queue.pb, url),
            )
        deadline = to_seconds(task.dispatch_deadline) if task.HasField("dispatch_deadline") else None
        return method, url, headers, deadline or rules.DEFAULT_DISPATCH_DEADLINE.total_seconds()

    def _authorization(self, task: Any, queue: Any, url: str) -> str | None:
        auth = attempts.effective_auth(task, queue)
        if auth is None:
            return None
        kind, token = auth
        if kind == "oidc":
            audience = token.audience or url
            return "Bearer " + self._signer().oidc_token(
                service_account_email=token.service_account_email, audience=audience
            )
        return "Bearer " + oauth_token()

    def finish(self, attempt: AttemptRequest, result: AttemptResult) -> AttemptOutcome:
        """Record an attempt's result: delete the task on success; else schedule the retry or give up.

        Returns what was decided and why (kept in the attempt's record, shown by the dashboard).
        """
        record: TaskRecord = attempt.record
        queue = record.queue
        queue.in_flight -= 1
        record.in_flight = False
        self.wake(queue)  # a slot is free again
        if not record.alive:  # deleted or purged while it ran
            return AttemptOutcome("gone", "the task was deleted or its queue purged while the attempt ran")
        now = self.clock.now()
        task = record.pb
        code, message = result.rpc_status()
        set_seconds(task.last_attempt.response_time, now)
        task.last_attempt.response_status.code = code
        task.last_attempt.response_status.message = message
        if result.status is not None:
            task.response_count += 1
        if result.succeeded:
            self._state.delete_task(record)
            return AttemptOutcome("succeeded", f"HTTP {result.status}: the task is done and deleted")
        if result.status is not None and result.status < 500:
            record.executions += 1
        record.previous_response = result.previous_response()
        record.retry_reason = result.retry_reason()
        max_attempts, max_duration, min_backoff, max_backoff, doublings = effective_retry(task, queue.pb)
        first = record.first_attempt_time if record.first_attempt_time is not None else now
        if retries_exhausted(
            attempts=task.dispatch_count,
            since_first=now - first,
            max_attempts=max_attempts,
            max_retry_duration=max_duration,
        ):
            self._state.delete_task(record)
            return AttemptOutcome(
                "gave_up", _gave_up_reason(task.dispatch_count, now - first, max_attempts, max_duration)
            )
        retry = task.dispatch_count - 1
        delay = backoff(retry, min_backoff=min_backoff, max_backoff=max_backoff, max_doublings=doublings)
        reason = _backoff_reason(retry, delay, min_backoff, max_backoff, doublings)
        # "Unlike other types of task targets, a 429 (Too Many Requests) response from an app handler
        # does not cause traffic congestion control to throttle the queue" (AppEngineHttpRequest).
        throttling = (503,) if attempts.is_app_engine(task) else (429, 503)
        if result.status in throttling and result.retry_after:
            # Bounded here too: a callable target may hand over any float.
            wait = min(result.retry_after, self.max_retry_after)
            if wait > delay:
                reason = f"Retry-After {wait:g} s, longer than the backoff ({reason}); the queue holds too"
            else:
                reason += f"; Retry-After {wait:g} s holds the queue"
            delay = max(delay, wait)
            queue.hold_until = max(queue.hold_until, now + wait)
        base = attempt.dispatch_time if attempt.forced else now
        if attempt.forced:
            reason += ", counted from the RunTask dispatch"
        record.forced = False
        # A task's schedule time is a Timestamp, which ends with the year 9999.
        next_time = min(base + delay, _LAST_TIMESTAMP)
        record.reschedule(next_time, next(self._state.counter))
        self._state.journal.task_finished(record)
        self._state.changed(queue)
        return AttemptOutcome("retry", reason, backoff=delay, next_time=next_time)


def _backoff_reason(retry: int, delay: float, min_backoff: float, max_backoff: float, doublings: int) -> str:
    """Which branch of :func:`~cloudtasks_kit.engine.scheduling.backoff` chose ``delay``, in words."""
    if retry <= doublings:
        rule = f"min_backoff {min_backoff:g} s doubled {retry} time{'s' if retry != 1 else ''}"
    else:
        rule = f"min_backoff {min_backoff:g} s doubled {doublings} times (max_doublings), then linear"
    if delay >= max_backoff:
        rule += f", capped at max_backoff {max_backoff:g} s"
    return f"backoff {delay:g} s: {rule}"


def _gave_up_reason(attempts_made: int, since_first: float, max_attempts: int, max_duration: float) -> str:
    text = f"max_attempts {max_attempts} reached ({attempts_made} attempts)"
    if max_duration > 0:
        text += (
            f" and past max_retry_duration {max_duration:g} s ({since_first:.1f} s since the first attempt)"
        )
    return text + ": the task is deleted"
