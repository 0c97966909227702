"""What a task function can know and say while it runs: its context, and how it wants to end.

from cloudtasks_kit import GiveUp, RetryLater, task_context

@app.task
def charge(order_id: int) -> None:
    context = task_context()
    if context.retry_count > 5:
        raise GiveUp("the card keeps failing")            # 200: Cloud Tasks stops retrying
    if payment_provider_is_down():
        raise RetryLater(after=timedelta(minutes=5))      # 503 with Retry-After
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from .errors import UsageError
from .verify import VerifiedToken

__all__ = ["GiveUp", "RetryLater", "TaskContext", "task_context"]


@dataclasses.dataclass(frozen=True)
class TaskContext:
    """The Cloud Tasks facts about the running attempt, from its ``X-CloudTasks-*`` headers.

    The handler reads those headers only from requests it has authenticated (or when verification is
    switched off for local use).

    Attributes:
        queue: the short queue id.
        task_id: the short task id.
        retry_count: attempts made before this one (0 on the first).
        execution_count: earlier attempts that got a non-5xx answer.
        eta: when this attempt was scheduled.
        previous_response: the HTTP status of the previous attempt, if any.
        retry_reason: why this is a retry, as Cloud Tasks put it.
        token: the verified OIDC token, when the handler verifies.
    """

    queue: str
    task_id: str
    retry_count: int
    execution_count: int
    eta: datetime | None
    previous_response: int | None
    retry_reason: str | None
    token: VerifiedToken | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], token: VerifiedToken | None = None) -> TaskContext:
        """Read the headers leniently: a malformed value is treated as absent, never as an error."""
        lowered = {k.lower(): v for k, v in headers.items()}

        def number(name: str) -> int | None:
            value = lowered.get(name, "").strip()
            return int(value) if value.isdigit() else None

        eta: datetime | None = None
        with contextlib.suppress(KeyError, ValueError, OverflowError, OSError):
            eta = datetime.fromtimestamp(float(lowered["x-cloudtasks-tasketa"]), timezone.utc)
        return cls(
            queue=lowered.get("x-cloudtasks-queuename", ""),
            task_id=lowered.get("x-cloudtasks-taskname", ""),
            retry_count=number("x-cloudtasks-taskretrycount") or 0,
            execution_count=number("x-cloudtasks-taskexecutioncount") or 0,
            eta=eta,
            previous_response=number("x-cloudtasks-taskpreviousresponse"),
            retry_reason=lowered.get("x-cloudtasks-taskretryreason"),
            token=token,
        )


_current: contextvars.ContextVar[TaskContext] = contextvars.ContextVar("cloudtasks_kit_task_context")


def task_context() -> TaskContext:
    """The context of the task running now; a UsageError outside a task handled by the kit."""
    try:
        return _current.get()
    except LookupError:
        raise UsageError(
            "task_context() is only available inside a task function run by a TaskHandler"
        ) from None


class RetryLater(Exception):
    """Raise in a task function to have Cloud Tasks retry it, not before ``after`` (a 503 with Retry-After).

    The queue's retry config still decides how many attempts there are.
    """

    def __init__(self, after: timedelta | float | None = None, reason: str = "") -> None:
        seconds = after.total_seconds() if isinstance(after, timedelta) else after
        if seconds is not None and seconds < 0:
            raise ValueError(f"RetryLater(after={after!r}) must not be negative")
        self.after = seconds
        self.reason = reason
        super().__init__(reason or "retry later")


class GiveUp(Exception):
    """Raise in a task function to stop retrying: the handler answers 200 and logs the reason.

    A 2xx is the only answer that ends a task's retries in Cloud Tasks.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
