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
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

from . import rules
from ._redact import shorten
from .errors import UsageError
from .verify import VerifiedToken

__all__ = ["GiveUp", "HeaderError", "RetryLater", "TaskContext", "task_context"]


@dataclasses.dataclass(frozen=True)
class TaskContext:
    """The Cloud Tasks facts about the running attempt, from its ``X-CloudTasks-*`` headers.

    The handler reads those headers only from requests it has authenticated (or when verification is
    switched off for local use), and strictly (:meth:`parse_headers`): a malformed one is answered 400.

    Attributes:
        queue: the short queue id.
        task_id: the short task id.
        retry_count: attempts made before this one (0 on the first).
        execution_count: earlier attempts that got a non-5xx answer.
        eta: when this attempt was scheduled.
        previous_response: the HTTP status of the previous attempt, if any.
        retry_reason: why this is a retry, as Cloud Tasks put it.
        token: the verified OIDC token, when the handler verifies.
        app_engine: read from an App Engine task's ``X-AppEngine-*`` headers (``TaskHandler(...,
            trust_app_engine_headers=True)``) rather than ``X-CloudTasks-*``.
    """

    queue: str
    task_id: str
    retry_count: int
    execution_count: int
    eta: datetime | None
    previous_response: int | None
    retry_reason: str | None
    token: VerifiedToken | None = None
    app_engine: bool = False

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str], token: VerifiedToken | None = None, *, app_engine: bool = False
    ) -> TaskContext:
        """Read the headers leniently: a malformed value is treated as absent, never as an error.

        ``app_engine`` reads the ``X-AppEngine-*`` headers of an App Engine task instead."""
        lowered = {k.lower(): v for k, v in headers.items()}
        values: dict[str, object] = {}
        for rule in _APP_ENGINE_HEADERS if app_engine else _HEADERS:
            raw = lowered.get(rule.header)
            if raw is not None:
                with contextlib.suppress(HeaderError):
                    values[rule.field] = rule.parse(raw)
        return cls._build(values, token, app_engine)

    @classmethod
    def parse_headers(
        cls, headers: Mapping[str, str], token: VerifiedToken | None = None, *, app_engine: bool = False
    ) -> TaskContext:
        """Read the headers strictly, as the handler does: a malformed value is a :class:`HeaderError`.

        Counts are ASCII digits (at most 9), the previous response at most 3 digits, the ETA seconds since
        the epoch (``1700000000.123456``), the names Cloud Tasks' queue and task id formats. Absent headers
        are fine (a request sent by hand, or by ``RunTask`` tooling, may lack some).
        """
        lowered = {k.lower(): v for k, v in headers.items()}
        values: dict[str, object] = {}
        for rule in _APP_ENGINE_HEADERS if app_engine else _HEADERS:
            raw = lowered.get(rule.header)
            if raw is not None:
                values[rule.field] = rule.parse(raw)
        return cls._build(values, token, app_engine)

    @classmethod
    def _build(
        cls, values: Mapping[str, object], token: VerifiedToken | None, app_engine: bool = False
    ) -> TaskContext:
        return cls(
            queue=str(values.get("queue", "")),
            task_id=str(values.get("task_id", "")),
            retry_count=int(values.get("retry_count", 0)),  # type: ignore[call-overload]
            execution_count=int(values.get("execution_count", 0)),  # type: ignore[call-overload]
            eta=values.get("eta"),  # type: ignore[arg-type]
            previous_response=values.get("previous_response"),  # type: ignore[arg-type]
            retry_reason=values.get("retry_reason"),  # type: ignore[arg-type]
            token=token,
            app_engine=app_engine,
        )


class HeaderError(ValueError):
    """An ``X-CloudTasks-*`` header whose value breaks its rule; the message names the header, the value
    (truncated) and the rule. The handler answers 400."""


@dataclasses.dataclass(frozen=True)
class _Rule:
    header: str
    field: str
    pattern: re.Pattern[str]
    rule: str
    convert: Callable[[str], object]

    def parse(self, raw: str) -> object:
        value = raw.strip()
        # re's \d would accept '²' and other Unicode digits that int() then refuses: ASCII only.
        if len(value) > _MAX_VALUE or not value.isascii() or self.pattern.fullmatch(value) is None:
            raise HeaderError(f"header {self.header}: {shorten(raw, 40)} {self.rule}")
        return self.convert(value)


def _eta(value: str) -> datetime:
    return datetime.fromtimestamp(float(value), timezone.utc)


_MAX_VALUE = 1024
_HEADERS = (
    _Rule(
        "x-cloudtasks-queuename",
        "queue",
        rules.QUEUE_ID_RE,
        "is not a queue id ([A-Za-z0-9-], 1 to 100)",
        str,
    ),
    _Rule(
        "x-cloudtasks-taskname",
        "task_id",
        rules.TASK_ID_RE,
        "is not a task id ([A-Za-z0-9_-], 1 to 500)",
        str,
    ),
    _Rule(
        "x-cloudtasks-taskretrycount",
        "retry_count",
        re.compile("[0-9]{1,9}"),
        "must be 1 to 9 ASCII digits",
        int,
    ),
    _Rule(
        "x-cloudtasks-taskexecutioncount",
        "execution_count",
        re.compile("[0-9]{1,9}"),
        "must be 1 to 9 ASCII digits",
        int,
    ),
    _Rule(
        "x-cloudtasks-tasketa",
        "eta",
        re.compile(r"[0-9]{1,11}(\.[0-9]{1,9})?"),
        "must be seconds since the epoch (ASCII digits, an optional fraction)",
        _eta,
    ),
    _Rule(
        "x-cloudtasks-taskpreviousresponse",
        "previous_response",
        re.compile("[0-9]{1,3}"),
        "must be an HTTP status (1 to 3 ASCII digits)",
        int,
    ),
    _Rule(
        "x-cloudtasks-taskretryreason",
        "retry_reason",
        re.compile("[\x20-\x7e]*"),
        f"must be printable ASCII, at most {_MAX_VALUE} characters",
        str,
    ),
)

# An App Engine task carries the same facts as X-AppEngine-* headers (creating-appengine-handlers,
# "Reading request headers").
_APP_ENGINE_HEADERS = tuple(
    dataclasses.replace(rule, header=rule.header.replace("x-cloudtasks-", "x-appengine-"))
    for rule in _HEADERS
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
