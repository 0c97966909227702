"""Client-side retries of creates, as a value: which errors, how many attempts, how long in all.

The official client never retries CreateTask, and for good reason: a create whose answer was lost may
have landed, and creating it again makes a second task. The kit retries a create only when that cannot
happen: the task has an id (``task_id=`` or ``dedup_key=``), so a second attempt that lands on the first
one's task answers ALREADY_EXISTS, which the kit reads as "the first attempt landed" and returns that
task. A task without an id is not retried unless ``RetryPolicy(unnamed=True)`` says duplicates are fine.

    tasks = CloudTasks(..., retry_policy=RetryPolicy(attempts=8, deadline=timedelta(minutes=1)))
    queue.create_task(url, dedup_key="order-42", retry_policy=RetryPolicy.none())   # per call

Built on tenacity. The waits between attempts are the transport's (real sleep over gRPC and REST, a
virtual-clock advance on the fake), unless ``sleep``/``async_sleep`` are given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from .errors import Aborted, ApiError, DeadlineExceeded, Internal, ResourceExhausted, Unavailable

if TYPE_CHECKING:
    import tenacity

__all__ = ["DEFAULT_RETRY_POLICY", "RetryPolicy"]

TRANSIENT: tuple[type[ApiError], ...] = (Unavailable, DeadlineExceeded, Internal, Aborted, ResourceExhausted)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How the kit retries a create (and a batch of creates).

    Attributes:
        attempts: attempts in all, the first included (1 = no retry).
        initial: the first wait; each next one is ``multiplier`` times longer, up to ``maximum``.
        jitter: up to this much random time added to each wait.
        deadline: stop retrying once this much time has passed since the first attempt (None: no limit).
        retry_on: the kit errors worth another attempt (transient ones by default; TransportError is an
            Unavailable).
        unnamed: also retry tasks without an id, accepting that a lost answer can make a duplicate.
        sleep, async_sleep: how to wait; None (the default) waits on the transport's clock.
    """

    attempts: int = 5
    initial: timedelta = timedelta(milliseconds=100)
    maximum: timedelta = timedelta(seconds=10)
    multiplier: float = 2.0
    jitter: timedelta = timedelta(milliseconds=100)
    deadline: timedelta | None = timedelta(seconds=60)
    retry_on: tuple[type[ApiError], ...] = TRANSIENT
    unnamed: bool = False
    sleep: Callable[[float], None] | None = None
    async_sleep: Callable[[float], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy attempts {self.attempts} must be at least 1")
        if self.multiplier < 1:
            raise ValueError(f"RetryPolicy multiplier {self.multiplier} must be at least 1")

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(attempts=1)

    def applies(self, named: bool) -> bool:
        """Whether a create of a task (with an id or not) may be retried under this policy."""
        return self.attempts > 1 and (named or self.unnamed)

    def _arguments(self) -> dict[str, object]:
        import tenacity  # on first retry: most processes never need it

        stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(self.attempts)
        if self.deadline is not None:
            stop = stop | tenacity.stop_after_delay(self.deadline.total_seconds())
        return {
            "stop": stop,
            "wait": tenacity.wait_exponential_jitter(
                multiplier=self.initial.total_seconds(),
                max=self.maximum.total_seconds(),
                exp_base=self.multiplier,
                jitter=self.jitter.total_seconds(),
            ),
            "retry": tenacity.retry_if_exception_type(self.retry_on),
            "reraise": True,
        }

    def retrying(self, sleep: Callable[[float], None] = time.sleep) -> tenacity.Retrying:
        """A tenacity ``Retrying`` for this policy, waiting with ``sleep`` unless the policy sets its own."""
        import tenacity

        return tenacity.Retrying(sleep=self.sleep or sleep, **self._arguments())  # type: ignore[arg-type]

    def async_retrying(
        self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> tenacity.AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for this policy, waiting with ``sleep`` unless the policy sets its own."""
        import tenacity

        return tenacity.AsyncRetrying(sleep=self.async_sleep or sleep, **self._arguments())  # type: ignore[arg-type]


DEFAULT_RETRY_POLICY = RetryPolicy()
