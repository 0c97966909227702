"""The deterministic driver: delivery on virtual time, for unit tests.

Time moves only when the driver moves it, straight to the next moment something is due, so a test that
waits an hour of backoff runs in milliseconds and does the same thing every time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from ..errors import CloudTasksError
from .clock import ManualClock
from .delivery import Dispatch, Outcome
from .engine import Engine
from .targets import Target, outcome_of

__all__ = ["Delivery", "NotIdleError", "VirtualDriver"]


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One recorded attempt: what was sent, when (engine clock), and what came back."""

    time: float
    task_name: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    retry_count: int
    status: int | None
    error: str | None
    response_body: bytes = b""

    @classmethod
    def of(cls, dispatch: Dispatch, outcome: Outcome, response_body: bytes = b"") -> Delivery:
        """The record of ``dispatch`` and what it got."""
        return cls(
            time=dispatch.dispatch_time,
            task_name=dispatch.task_name,
            method=dispatch.method,
            url=dispatch.url,
            headers=dispatch.headers,
            body=dispatch.body,
            retry_count=dispatch.retry_count,
            status=outcome.status,
            error=outcome.error,
            response_body=response_body,
        )

    @property
    def task_id(self) -> str:
        return self.task_name.rsplit("/", 1)[-1]

    @property
    def queue(self) -> str:
        """The short id of the task's queue."""
        return self.task_name.split("/")[5]

    @property
    def queue_name(self) -> str:
        return self.task_name.rsplit("/tasks/", 1)[0]

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        """The request body decoded as JSON."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def __repr__(self) -> str:
        result = self.status if self.status is not None else self.error
        return (
            f"Delivery({self.method} {self.url} task={self.task_id!r} retry={self.retry_count} -> {result})"
        )


class NotIdleError(CloudTasksError):
    """``run_until_idle`` reached its bound with tasks still to deliver."""


Route = Callable[[Dispatch], Target | None]


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
        self.clock = clock
        self.route = route
        self.deliveries: list[Delivery] = []
        # The engine is not thread-safe, and a target (an ASGI app on its own loop) may create tasks from
        # another thread while an attempt runs: engine calls take the lock, attempts run without it.
        self._lock = lock if lock is not None else contextlib.nullcontext()

    def run_due(self) -> list[Delivery]:
        """Deliver everything due now, without moving time (retries due now included)."""
        done: list[Delivery] = []
        while True:
            with self._lock:
                batch = self.engine.take_due()
            if not batch:
                return done
            done.extend(self._deliver(dispatch) for dispatch in batch)

    def advance(self, by: timedelta | float) -> list[Delivery]:
        """Move time forward by ``by``, delivering everything that falls due on the way, in order."""
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        end = self.clock.now() + seconds
        done = self.run_due()
        while True:
            with self._lock:
                when = self.engine.next_due()
            if when is None or when > end:
                break
            self.clock.set(when)
            done += self.run_due()
        self.clock.set(end)
        return done + self.run_due()

    def run_until_idle(self, *, max_attempts: int = 10_000) -> list[Delivery]:
        """Deliver until no task is left to dispatch, jumping time to each next due moment.

        Tasks in paused or disabled queues stay where they are. Raises :class:`NotIdleError` after
        ``max_attempts`` attempts (a handler that keeps failing a task with unlimited retries never
        ends), naming what is still pending.
        """
        done: list[Delivery] = []
        while True:
            with self._lock:
                when = self.engine.next_due()
            if when is None:
                return done
            if len(done) >= max_attempts:
                raise NotIdleError(self._still_busy(max_attempts))
            self.clock.set(when)
            with self._lock:
                batch = self.engine.take_due(limit=max_attempts - len(done))
            done.extend(self._deliver(dispatch) for dispatch in batch)

    def _deliver(self, dispatch: Dispatch) -> Delivery:
        target = self.route(dispatch)
        if target is None:
            outcome, response = Outcome(None, error=f"UNREACHABLE: no target takes {dispatch.url}"), None
        else:
            outcome, response = outcome_of(dispatch, target)
        with self._lock:
            self.engine.finish(dispatch, outcome)
        delivery = Delivery.of(dispatch, outcome, response.body if response is not None else b"")
        self.deliveries.append(delivery)
        return delivery

    def _still_busy(self, max_attempts: int) -> str:
        pending = self.engine.dispatchable()
        last = self.deliveries[-1] if self.deliveries else None
        example = f"; the last attempt was {last!r}" if last is not None else ""
        return (
            f"run_until_idle stopped after {max_attempts} attempts with {pending} task(s) still to deliver"
            f"{example}. A handler that keeps failing with unlimited retries never ends: fix the handler, "
            "limit the queue's retries (RetryConfig(max_attempts=...)), or raise max_attempts="
        )
