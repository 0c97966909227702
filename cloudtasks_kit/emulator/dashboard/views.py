"""What the dashboard shows, read from the engine's state and the History of attempts: plain values for
the templates, with every secret already redacted.

Nothing here writes: the actions go through :meth:`Engine.call <cloudtasks_kit.engine.engine.Engine.call>`
like any API call. Nothing here is kept either: each view is built when a page (or its live update)
asks, so the dashboard adds no memory to the emulator beyond the History it already bounds.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from ... import rules
from ..._convert import to_seconds
from ..._redact import redact_headers, redact_url
from ...drivers.history import History
from ...engine.attempts import AttemptRecord, effective_target
from ...engine.engine import Engine
from ...engine.state import PAUSED, RUNNING, QueueRecord, TaskRecord, effective_retry
from ...names import location_of_queue, queue_of_task, short_id

__all__ = [
    "TASK_STATES",
    "AttemptView",
    "Journey",
    "QueueView",
    "TaskRow",
    "journey",
    "queue_view",
    "queue_views",
    "task_rows",
    "task_status",
]

TASK_STATES = ("due", "scheduled", "in flight", "retrying")
"""Each task is in one: due (never tried, its time has come), scheduled (never tried, due later), in
flight (an attempt is running), retrying (tried and failed, waiting for its next attempt)."""

RATE_WINDOW = 60.0
_BODY_PREVIEW = 1024
_RESPONSE_PREVIEW = 512
_HEADER_LIMIT = 160
_URL_LIMIT = 200
_STATE_NAMES = {RUNNING: "RUNNING", PAUSED: "PAUSED"}


@dataclasses.dataclass(frozen=True)
class QueueView:
    """One queue as the queue list shows it."""

    name: str
    id: str
    location: str
    state: str
    max_dispatches_per_second: float
    max_burst_size: int
    max_concurrent_dispatches: int
    retry: str
    target: str
    counts: dict[str, int]
    dispatched_last_minute: int
    rate_is_lower_bound: bool
    held_until: float | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclasses.dataclass(frozen=True)
class TaskRow:
    """One task in a queue's task list."""

    name: str
    id: str
    state: str
    method: str
    url: str
    schedule_time: float
    dispatch_count: int
    response_count: int
    last_answer: str


@dataclasses.dataclass(frozen=True)
class AttemptView:
    """One attempt on a task's timeline: what was sent, what came back, and what was decided."""

    time: float
    retry_count: int
    method: str
    url: str
    headers: dict[str, str]
    body_preview: str
    body_size: int
    answer: str
    succeeded: bool
    latency_ms: float | None
    retry_after: float | None
    response_preview: str
    outcome_kind: str | None
    outcome_reason: str | None
    backoff: float | None
    next_time: float | None


@dataclasses.dataclass(frozen=True)
class Journey:
    """A task's journey: the task now (None once it is gone), where it stands, and its attempts."""

    name: str
    id: str
    queue: str
    task: TaskRow | None
    status: str
    explanation: str
    headers: dict[str, str]
    body_preview: str
    body_size: int
    created: float | None
    max_attempts: str
    attempts: list[AttemptView]
    forgotten: int


def _state_of(record: TaskRecord, now: float) -> str:
    if record.in_flight:
        return "in flight"
    if record.pb.dispatch_count:
        return "retrying"
    return "due" if record.eta <= now else "scheduled"


def _retry_text(queue: Any) -> str:
    retry = queue.retry_config
    attempts = "unlimited" if retry.max_attempts == -1 else str(retry.max_attempts)
    duration = to_seconds(retry.max_retry_duration)
    text = (
        f"max_attempts {attempts}, backoff {to_seconds(retry.min_backoff):g}-{to_seconds(retry.max_backoff):g} s"
        f", max_doublings {retry.max_doublings}"
    )
    return text + (f", max_retry_duration {duration:g} s" if duration else "")


def _target_text(queue: Any) -> str:
    """The queue-level HTTP target in one line ("" when the queue has none)."""
    target = queue.http_target
    parts = []
    if target.HasField("uri_override"):
        override = target.uri_override
        scheme = {1: "http", 2: "https"}.get(override.scheme, "")
        where = f"{scheme + '://' if scheme else ''}{override.host}{':' + str(override.port) if override.port else ''}"
        if override.HasField("path_override"):
            where += override.path_override.path
        parts.append(f"URI override {redact_url(where, _URL_LIMIT)}")
    if target.http_method:
        parts.append(f"method {tasks_method_name(target.http_method)}")
    if target.header_overrides:
        shown = redact_headers([(o.header.key, o.header.value) for o in target.header_overrides])
        parts.append("headers " + ", ".join(f"{k}: {v}" for k, v in shown.items()))
    if target.HasField("oidc_token"):
        parts.append(f"OIDC token as {target.oidc_token.service_account_email}")
    elif target.HasField("oauth_token"):
        parts.append(f"OAuth token as {target.oauth_token.service_account_email}")
    return "; ".join(parts)


def tasks_method_name(number: int) -> str:
    return str(rules.METHOD_NAMES.get(number, number))


def _dispatch_counts(history: History, now: float) -> tuple[Counter[str], bool]:
    """Attempts dispatched in the last minute, by queue; and whether the History is too short to hold the
    whole minute (then the counts are lower bounds)."""
    since = now - RATE_WINDOW
    recent = history.since(since)
    counts: Counter[str] = Counter(record.queue_name for record in recent)
    short = history.size is not None and len(history) >= history.size and bool(recent)
    return counts, short and recent[-1].time > since


def queue_view(record: QueueRecord, now: float, dispatched: int = 0, lower_bound: bool = False) -> QueueView:
    counts = dict.fromkeys(TASK_STATES, 0)
    for task in record.tasks.values():
        counts[_state_of(task, now)] += 1
    pb = record.pb
    limits = pb.rate_limits
    return QueueView(
        name=record.name,
        id=short_id(record.name),
        location=location_of_queue(record.name),
        state=_STATE_NAMES.get(pb.state, "DISABLED"),
        max_dispatches_per_second=limits.max_dispatches_per_second,
        max_burst_size=limits.max_burst_size,
        max_concurrent_dispatches=limits.max_concurrent_dispatches,
        retry=_retry_text(pb),
        target=_target_text(pb),
        counts=counts,
        dispatched_last_minute=dispatched,
        rate_is_lower_bound=lower_bound,
        held_until=record.hold_until if record.hold_until > now else None,
    )


def queue_views(engine: Engine, history: History) -> list[QueueView]:
    """Every queue, by name, with its task counts and its dispatches over the last minute."""
    now = engine.clock.now()
    dispatched, lower_bound = _dispatch_counts(history, now)
    return [
        queue_view(engine.state.queues[name], now, dispatched[name], lower_bound)
        for name in sorted(engine.state.queues)
    ]


def _last_answer(pb: Any) -> str:
    if not pb.HasField("last_attempt") or not pb.last_attempt.HasField("response_time"):
        return ""
    return str(pb.last_attempt.response_status.message) or f"code {pb.last_attempt.response_status.code}"


def _row(record: TaskRecord, now: float) -> TaskRow:
    pb = record.pb
    method, url = effective_target(pb, record.queue.pb)
    return TaskRow(
        name=str(pb.name),
        id=record.id,
        state=_state_of(record, now),
        method=method,
        url=redact_url(url, _URL_LIMIT),
        schedule_time=record.eta,
        dispatch_count=pb.dispatch_count,
        response_count=pb.response_count,
        last_answer=_last_answer(pb),
    )


def task_rows(
    engine: Engine,
    queue: QueueRecord,
    *,
    state: str = "",
    url: str = "",
    name: str = "",
    offset: int,
    limit: int,
) -> tuple[list[TaskRow], int]:
    """A page of a queue's tasks in creation order, filtered by state and by substrings of URL and id;
    and how many tasks match in all."""
    now = engine.clock.now()
    rows: list[TaskRow] = []
    matched = 0
    for record in queue.tasks_after(0):
        if state and _state_of(record, now) != state:
            continue
        if name and name not in record.id:
            continue
        if url and url not in effective_target(record.pb, queue.pb)[1]:
            continue
        if offset <= matched < offset + limit:
            rows.append(_row(record, now))
        matched += 1
    return rows, matched


def task_status(engine: Engine, record: TaskRecord) -> tuple[str, str]:
    """Where a live task stands and, when it is not running now, why: ``(status, explanation)``."""
    now = engine.clock.now()
    queue = record.queue
    pb = queue.pb
    limits = pb.rate_limits
    if record.in_flight:
        return "in flight", "an attempt is being delivered now"
    if pb.state != RUNNING:
        state = _STATE_NAMES.get(pb.state, "DISABLED")
        return (
            "blocked",
            f"the queue is {state}: none of its tasks run until it is resumed (Run now still runs one)",
        )
    if record.eta > now:
        if record.pb.dispatch_count:
            return (
                "retrying",
                f"attempt {record.pb.dispatch_count + 1} is due at {_clock(record.eta)} (backoff)",
            )
        return "scheduled", f"due at {_clock(record.eta)}"
    if queue.hold_until > now:
        return "held", f"the queue is held until {_clock(queue.hold_until)} by a Retry-After answer"
    if queue.in_flight >= limits.max_concurrent_dispatches:
        return (
            "waiting",
            f"max_concurrent_dispatches {limits.max_concurrent_dispatches} reached: it starts when an attempt"
            " of the queue finishes",
        )
    next_token = queue.bucket.next_token_at(now)
    if next_token > now + 1e-3:
        return (
            "rate limited",
            f"max_dispatches_per_second {limits.max_dispatches_per_second:g}: the next dispatch of the queue"
            f" is at {_clock(next_token)}",
        )
    return "due", "due now: the next dispatch of its queue starts it"


def _clock(when: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3] + " UTC"


def _preview(data: bytes, limit: int) -> str:
    text = data[:limit].decode("utf-8", "replace")
    return text + ("..." if len(data) > limit else "")


def _attempt_view(record: AttemptRecord) -> AttemptView:
    outcome = record.outcome
    answer = f"HTTP {record.status}" if record.status is not None else record.error or "no answer"
    return AttemptView(
        time=record.time,
        retry_count=record.retry_count,
        method=record.method,
        url=redact_url(record.url, _URL_LIMIT),
        # redact_headers hides Authorization (already "Bearer [redacted]" in the record) and every
        # header named like a credential (X-Api-Key, Cookie, *-Token...).
        headers=redact_headers(record.headers, _HEADER_LIMIT),
        body_preview=_preview(record.body, _BODY_PREVIEW),
        body_size=len(record.body),
        answer=answer,
        succeeded=record.succeeded,
        latency_ms=None if record.latency is None else record.latency * 1000,
        retry_after=record.retry_after,
        response_preview=_preview(record.response_body, _RESPONSE_PREVIEW),
        outcome_kind=None if outcome is None else outcome.kind,
        outcome_reason=None if outcome is None else outcome.reason,
        backoff=None if outcome is None else outcome.backoff,
        next_time=None if outcome is None else outcome.next_time,
    )


def journey(engine: Engine, history: History, name: str) -> Journey | None:
    """A task's journey by full name, live or finished (None if neither the engine nor the History has it).

    The attempts come from the History (bounded), so a task whose early attempts were forgotten says so.
    """
    records = [record for record in history if record.task_name == name]
    queue_name, task_id = queue_of_task(name), short_id(name)
    queue = engine.state.queues.get(queue_name)
    live = queue.tasks.get(task_id) if queue is not None else None
    if live is None and not records:
        return None
    attempts = [_attempt_view(record) for record in records]
    if live is not None:
        pb = live.pb
        # An App Engine task keeps its headers and body in app_engine_http_request.
        request = pb.app_engine_http_request if pb.HasField("app_engine_http_request") else pb.http_request
        status, explanation = task_status(engine, live)
        max_attempts, max_duration, *_ = effective_retry(pb, live.queue.pb)
        limit = "unlimited" if max_attempts == -1 else str(max_attempts)
        if max_duration:
            limit += f", max_retry_duration {max_duration:g} s"
        return Journey(
            name=name,
            id=task_id,
            queue=queue_name,
            task=_row(live, engine.clock.now()),
            status=status,
            explanation=explanation,
            headers=redact_headers(dict(request.headers), _HEADER_LIMIT),
            body_preview=_preview(bytes(request.body), _BODY_PREVIEW),
            body_size=len(request.body),
            created=to_seconds(pb.create_time),
            max_attempts=limit,
            attempts=attempts,
            forgotten=max(0, pb.dispatch_count - len(attempts) - (1 if live.in_flight else 0)),
        )
    last = records[-1]
    if last.outcome is not None and last.outcome.kind == "succeeded":
        status, explanation = "succeeded", f"succeeded at {_clock(last.time)}; the task is deleted"
    elif last.outcome is not None and last.outcome.kind == "gave_up":
        status, explanation = "gave up", f"will not run again: {last.outcome.reason}"
    else:
        status, explanation = "deleted", "the task was deleted (or its queue purged)"
    return Journey(
        name=name,
        id=task_id,
        queue=queue_name,
        task=None,
        status=status,
        explanation=explanation,
        headers={},
        body_preview=attempts[-1].body_preview,
        body_size=attempts[-1].body_size,
        created=None,
        max_attempts="",
        attempts=attempts,
        forgotten=max(0, last.retry_count + 1 - len(attempts)),
    )
