"""The deterministic driver: delivery on virtual time, for unit tests.

Time moves only when the driver moves it, straight to the next moment something is due, so a test that
waits an hour of backoff runs in milliseconds and does the same thing every time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from ..engine.attempts import AttemptRecord, AttemptRequest, AttemptResult
from ..engine.clock import ManualClock
from ..engine.engine import Engine
from ..errors import CloudTasksError
from .history import History
from .targets import Target, result_of

__all__ = ["NotIdleError", "VirtualDriver"]


class NotIdleError(CloudTasksError):
    """``run_until_idle`` reached its bound with tasks still to deliver."""


Route = Callable[[AttemptRequest], Target | None]


class VirtualDriver:
    """Moves an engine on a :class:`ManualClock`, delivering each due attempt to the target ``route`` picks.

    ``route`` returns None when no target takes the URL: the attempt fails with no answer, as an
    unreachable host does.
    """

    def __init__(
        self,
        engine: Engine,
        clock: ManualClock,
        route: Route,
        lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.engine = engine
        self.scheduler = engine.scheduler
        self.clock = clock
        self.route = route
        self.history = History()
        """The attempts made, oldest first (bounded: see :class:`~cloudtasks_kit.drivers.history.History`)."""
        # The engine is not thread-safe, and a target (an ASGI app on its own loop) may create tasks from
        # another thread while an attempt runs: engine calls take the lock, attempts run without it.
        self._lock = lock if lock is not None else contextlib.nullcontext()

    def run_due(self) -> list[AttemptRecord]:
        """Deliver everything due now, without moving time (retries due now included)."""
        done: list[AttemptRecord] = []
        while True:
            with self._lock:
                batch = self.scheduler.take_due()
            if not batch:
                return done
            done.extend(self._deliver(attempt) for attempt in batch)

    def advance(self, by: timedelta | float) -> list[AttemptRecord]:
        """Move time forward by ``by``, delivering everything that falls due on the way, in order."""
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        end = self.clock.now() + seconds
        done = self.run_due()
        while True:
            with self._lock:
                when = self.scheduler.next_due()
            if when is None or when > end:
                break
            self.clock.set(when)
            done += self.run_due()
        self.clock.set(end)
        return done + self.run_due()

    def run_until_idle(self, *, max_attempts: int = 10_000) -> list[AttemptRecord]:
        """Deliver until no task is left to dispatch, jumping time to each next due moment.

        Tasks in paused or disabled queues stay where they are. Raises :class:`NotIdleError` after
        ``max_attempts`` attempts (a handler that keeps failing a task with unlimited retries never
        ends), naming what is still pending.
        """
        done: list[AttemptRecord] = []
        while True:
            with self._lock:
                when = self.scheduler.next_due()
            if when is None:
                return done
            if len(done) >= max_attempts:
                raise NotIdleError(self._still_busy(max_attempts))
            self.clock.set(when)
            with self._lock:
                batch = self.scheduler.take_due(limit=max_attempts - len(done))
            done.extend(self._deliver(attempt) for attempt in batch)

    def _deliver(self, attempt: AttemptRequest) -> AttemptRecord:
        target = self.route(attempt)
        if attempt.failed is not None:
            result = AttemptResult(None, error=attempt.failed)
        elif target is None:
            result = AttemptResult(None, error=f"UNREACHABLE: no target takes {attempt.url}")
        else:
            result = result_of(
                attempt, target, now=self.clock.now(), max_retry_after=self.scheduler.max_retry_after
            )
        with self._lock:
            outcome = self.scheduler.finish(attempt, result)
        record = AttemptRecord.of(attempt, result, outcome=outcome)
        self.history.append(record)
        return record

    def _still_busy(self, max_attempts: int) -> str:
        pending = self.scheduler.dispatchable()
        last = self.history.last()
        example = f"; the last attempt was {last!r}" if last is not None else ""
        return (
            f"run_until_idle stopped after {max_attempts} attempts with {pending} task(s) still to deliver"
            f"{example}. A handler that keeps failing with unlimited retries never ends: fix the handler, "
            "limit the queue's retries (RetryConfig(max_attempts=...)), or raise max_attempts="
        )
