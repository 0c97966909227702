"""Scheduling attempts: which start now, what each sends, and what its result does to the task.

The engine's :attr:`~cloudtasks_kit.engine.engine.Engine.scheduler`, beside its RPCs: a driver calls
:meth:`Scheduler.take_due`, sends each :class:`~cloudtasks_kit.engine.attempts.AttemptRequest`, and
reports with :meth:`Scheduler.finish`; :meth:`Scheduler.next_due` says when to look again.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from .. import rules
from .._convert import set_seconds, to_seconds
from . import attempts
from .attempts import AttemptRequest, AttemptResult
from .clock import Clock
from .scheduling import backoff, retries_exhausted
from .state import RUNNING, ServiceState, TaskRecord, effective_retry
from .tokens import TokenSigner, oauth_token

__all__ = ["Scheduler"]


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

    def take_due(self, limit: int | None = None) -> list[AttemptRequest]:
        """Start the attempts that are due now, within each queue's rate and concurrency limits.

        RunTask'd tasks go first and ignore both limits and the paused state.
        """
        now = self.clock.now()
        out: list[AttemptRequest] = []
        while self._state.forced and (limit is None or len(out) < limit):
            record = self._state.forced.popleft()
            if record.alive and record.forced and not record.in_flight:
                out.append(self._start(record, now, forced=True))
        for queue in self._state.queues.values():
            if queue.pb.state != RUNNING or now < queue.hold_until:
                continue
            cap = queue.pb.rate_limits.max_concurrent_dispatches
            while limit is None or len(out) < limit:
                due = queue.top()
                if due is None or due.eta > now or queue.in_flight >= cap or not queue.bucket.take(now):
                    break
                heapq.heappop(queue.heap)
                out.append(self._start(due, now, forced=False))
        return out

    def next_due(self) -> float | None:
        """When :meth:`take_due` may next return something (None: nothing until a call or a finish)."""
        now = self.clock.now()
        if any(r.alive and not r.in_flight for r in self._state.forced):
            return now
        best: float | None = None
        for queue in self._state.queues.values():
            if queue.pb.state != RUNNING or queue.in_flight >= queue.pb.rate_limits.max_concurrent_dispatches:
                continue
            record = queue.top()
            if record is None:
                continue
            when = max(record.eta, queue.hold_until, queue.bucket.next_token_at(now))
            best = when if best is None else min(best, when)
        return best

    def dispatchable(self) -> int:
        """Tasks that will be dispatched without anyone acting: in RUNNING queues, or RunTask'd."""
        forced = sum(1 for r in self._state.forced if r.alive)
        return forced + sum(len(q.tasks) for q in self._state.queues.values() if q.pb.state == RUNNING)

    def _start(self, record: TaskRecord, now: float, *, forced: bool) -> AttemptRequest:
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
        method, url = attempts.effective_target(task, queue.pb)
        headers = attempts.build_headers(
            task,
            queue.pb,
            retry_count=retry_count,
            execution_count=record.executions,
            previous_response=record.previous_response,
            retry_reason=record.retry_reason,
            eta=record.eta,
            authorization=self._authorization(task, queue.pb, url),
        )
        deadline = to_seconds(task.dispatch_deadline) if task.HasField("dispatch_deadline") else None
        self._state.journal.task_started(record)
        return AttemptRequest(
            task_name=task.name,
            queue_name=queue.name,
            method=method,
            url=url,
            headers=headers,
            body=bytes(task.http_request.body),
            deadline=deadline or rules.DEFAULT_DISPATCH_DEADLINE.total_seconds(),
            retry_count=retry_count,
            schedule_time=record.eta,
            dispatch_time=now,
            forced=forced,
            record=record,
        )

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

    def finish(self, attempt: AttemptRequest, result: AttemptResult) -> None:
        """Record an attempt's result: delete the task on success; else schedule the retry or give up."""
        record: TaskRecord = attempt.record
        queue = record.queue
        queue.in_flight -= 1
        record.in_flight = False
        if not record.alive:  # deleted or purged while it ran
            return
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
            return
        if result.status is not None and result.status < 500:
            record.executions += 1
        record.previous_response = result.status
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
            return
        delay = backoff(
            task.dispatch_count - 1, min_backoff=min_backoff, max_backoff=max_backoff, max_doublings=doublings
        )
        if result.status in (429, 503) and result.retry_after:
            # Bounded here too: a callable target may hand over any float.
            wait = min(result.retry_after, self.max_retry_after)
            delay = max(delay, wait)
            queue.hold_until = max(queue.hold_until, now + wait)
        base = attempt.dispatch_time if attempt.forced else now
        record.forced = False
        record.reschedule(base + delay, next(self._state.counter))
        self._state.journal.task_finished(record)
        self._state.changed()
