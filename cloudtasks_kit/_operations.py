"""The operations of the facades, written once: each is a generator that builds requests and decodes
responses without doing any I/O.

An operation yields a :class:`~cloudtasks_kit._runner.Call` (a row of the call table and its request)
through :func:`~cloudtasks_kit._runner.call`, receives the typed response (or has the kit's error thrown
in), and returns the typed result. :mod:`cloudtasks_kit._runner` drives one over a sync or an async
transport; the facades (``client.py``, ``aio.py``) only choose the runner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from google.cloud import tasks_v2

from . import _lazy, errors, rules, tracing
from ._runner import Op, Plan, call
from .names import parse_task_name, short_id, task_path
from .transports import calls
from .transports.calls import BufferTaskRequest

if TYPE_CHECKING:
    from . import appengine, queues, tasks
    from .appengine import AppEngineRouting, AppEngineTask
    from .queues import Queue, QueueHttpTarget, RateLimits, RetryConfig
    from .retry import RetryPolicy
    from .tasks import Task, TaskSpec
else:  # the pydantic models load on first use (see _lazy)
    appengine = _lazy.module("cloudtasks_kit.appengine")
    queues = _lazy.module("cloudtasks_kit.queues")
    tasks = _lazy.module("cloudtasks_kit.tasks")

View = Literal["BASIC", "FULL"]

_VIEWS: dict[str, int] = {"BASIC": tasks_v2.Task.View.BASIC, "FULL": tasks_v2.Task.View.FULL}
_PB_CREATE_TASK = tasks_v2.CreateTaskRequest.pb()
_PB_TASK = tasks_v2.Task.pb()


def view_number(view: View) -> int:
    number = _VIEWS.get(view)
    if number is None:
        raise errors.ValidationError("view", view, "must be 'BASIC' or 'FULL'")
    return number


def task_name(queue_name: str, task: str | Task) -> str:
    """A task's full name from its short id, its full name (in this queue) or a :class:`Task`."""
    if isinstance(task, tasks.Task):
        task = task.name
    if "/" in task:
        parsed = parse_task_name(task)
        if parsed.queue_path != queue_name:
            raise errors.ValidationError("task name", task, f"is not in the queue {queue_name}")
        return task
    return task_path(queue_name, rules.check_task_id(task))


# Tasks.


def as_spec(url: str | TaskSpec | AppEngineTask, options: Mapping[str, Any]) -> TaskSpec | AppEngineTask:
    """``create_task``'s arguments as a spec: a URL and keywords, or a ready spec alone."""
    if isinstance(url, (tasks.TaskSpec, appengine.AppEngineTask)):
        if options:
            raise errors.UsageError(f"create_task(spec) takes no keywords (got {', '.join(sorted(options))})")
        return url
    return tasks.TaskSpec(url=url, **options)


def create_request(
    queue_name: str, spec: TaskSpec | AppEngineTask, *, now: float, limits: rules.Limits
) -> Any:
    """The raw ``CreateTaskRequest`` for a spec, checked by the rules (no I/O)."""
    request = _PB_CREATE_TASK(parent=queue_name)
    if isinstance(spec, appengine.AppEngineTask):
        appengine.build_app_engine_task(
            spec, queue_name=queue_name, now=now, limits=limits, into=request.task
        )
    else:
        tasks.build_task(spec, queue_name=queue_name, now=now, limits=limits, into=request.task)
    return request


_wrap_create_request = calls.wrapper(tasks_v2.CreateTaskRequest)


def create_attempt(request: Any, retried: bool, started: float, limits: rules.Limits) -> Op[Task]:
    """One attempt at a create.

    ALREADY_EXISTS on the first attempt: the id was used before this call, :class:`AlreadyExists`. On a
    retry (an earlier attempt's answer was lost, so it may have landed): :func:`found_taken` decides.
    """
    try:
        response = yield from call(calls.CREATE_TASK, _wrap_create_request(request))
    except errors.AlreadyExists as exc:
        if not retried:
            raise
        return (yield from found_taken(request.task.name, started, limits, exc))
    return tasks.Task.from_message(response, tasks.CreateOutcome.CREATED)


def found_taken(name: str, started: float, limits: rules.Limits, taken: errors.AlreadyExists) -> Op[Task]:
    """A retried create found its id taken: did an earlier, unanswered attempt of this call make the task
    (``LANDED``), or was the id used before the call (:class:`AlreadyExists`, as without faults)?

    The kit reads the task: it is this call's if its ``create_time`` (whole seconds, the service's
    clock) is not before the second in which the call ``started`` (this machine's clock, less
    ``limits.clock_skew``). If it cannot be read (no ``cloudtasks.tasks.get``, a failed read, or the
    task already ran or was deleted), the create does not fail for it: it returns the name alone,
    ``UNCONFIRMED``.
    """
    try:
        response = yield from call(
            calls.GET_TASK, tasks_v2.GetTaskRequest(name=name, response_view=tasks_v2.Task.View.BASIC)
        )
    except errors.CloudTasksError:
        # PERMISSION_DENIED (roles/cloudtasks.enqueuer has no tasks.get), NOT_FOUND (it ran, or was
        # deleted), or the read failed: what is known is that a task of this name exists or existed.
        return tasks.Task(_PB_TASK(name=name), tasks.CreateOutcome.UNCONFIRMED)
    pb = tasks_v2.Task.pb(response) if isinstance(response, tasks_v2.Task) else response
    created = int(pb.create_time.seconds)
    if not created:  # a service that leaves create_time out: nothing to compare with
        return tasks.Task.from_message(response, tasks.CreateOutcome.UNCONFIRMED)
    if created >= math.floor(started - limits.clock_skew.total_seconds()):
        return tasks.Task.from_message(response, tasks.CreateOutcome.LANDED)
    error = errors.AlreadyExists(
        f"{taken.message} (task {short_id(name)} was created at {_utc(created)}, before this create "
        f"started at {_utc(started)}: its id was used before, and a retry does not make it this call's)"
    )
    error.__cause__ = taken
    raise error


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def plan_create(
    queue_name: str,
    spec: TaskSpec | AppEngineTask,
    *,
    now: float,
    limits: rules.Limits,
    policy: RetryPolicy | None,
) -> Plan[Task]:
    """A create, retried under ``policy`` when the task has an id (see :mod:`cloudtasks_kit.retry`).

    ``now`` is when the call started, on the transport's clock: ``delay`` counts from it, and a retry that
    finds the id taken compares the task's ``create_time`` with it.
    """
    request = create_request(queue_name, spec, now=now, limits=limits)
    rules.vouch(request, limits)  # the fake's engine need not check it again: validated once
    trace = tracing.for_create(queue_name, request, limits)  # None unless OpenTelemetry is on
    return Plan(
        policy, bool(request.task.name), lambda retried: create_attempt(request, retried, now, limits), trace
    )


def get_task(name: str, view: View) -> Op[Task]:
    response = yield from call(
        calls.GET_TASK, tasks_v2.GetTaskRequest(name=name, response_view=view_number(view))
    )
    return tasks.Task.from_message(response)


def run_task(name: str, view: View) -> Op[Task]:
    response = yield from call(
        calls.RUN_TASK, tasks_v2.RunTaskRequest(name=name, response_view=view_number(view))
    )
    return tasks.Task.from_message(response)


def delete_task(name: str) -> Op[None]:
    yield from call(calls.DELETE_TASK, tasks_v2.DeleteTaskRequest(name=name))


def list_tasks_page(
    queue_name: str, view: View, page_size: int | None, token: str
) -> Op[tuple[list[Task], str]]:
    if page_size is not None and not 1 <= page_size <= rules.LIST_TASKS_MAX_PAGE:
        raise errors.ValidationError(
            "page_size", page_size, f"must be between 1 and {rules.LIST_TASKS_MAX_PAGE}"
        )
    request = tasks_v2.ListTasksRequest(
        parent=queue_name, response_view=view_number(view), page_size=page_size or 0, page_token=token
    )
    response = yield from call(calls.LIST_TASKS, request)
    return [tasks.Task.from_message(t) for t in response.tasks], str(response.next_page_token)


def buffer_task(
    queue_name: str,
    known: Queue | None,
    *,
    body: bytes | None,
    text: str | None,
    json: Any,
    task_id: str | None,
    method: str,
    headers: Mapping[str, str] | None,
) -> Op[Task]:
    """BufferTask, refusing before any I/O what the service would: a bad id, a method it does not
    deliver, reserved headers, and a queue the kit knows has no queue-level routing."""
    if task_id is not None:
        rules.check_task_id(task_id)
    method = method.upper()
    if method not in rules.METHOD_VALUES:
        raise errors.ValidationError("method", method, "is not an HTTP method Cloud Tasks delivers")
    if headers:
        rules.check_headers(headers.items(), strict=True)
        if any(name.lower() == "authorization" for name in headers):
            raise errors.ValidationError(
                "header",
                "Authorization",
                "carries the caller's own credentials to Cloud Tasks; set task auth on the queue",
            )
    if known is not None and not known.raw_pb.http_target.uri_override.host:
        raise errors.ValidationError(
            "queue",
            queue_name,
            "has no queue-level routing, which BufferTask needs: "
            "queue.ensure(http_target=QueueHttpTarget(uri_override=UriOverride(host=...)))",
        )
    data, sent_headers = tasks.encode_body(headers or {}, body=body, text=text, json=json)
    request = BufferTaskRequest(queue_name, task_id, method, sent_headers, data or b"")
    response = yield from call(calls.BUFFER_TASK, request)
    return tasks.Task.from_message(response)


# Queues.


def get_queue(name: str) -> Op[Queue]:
    response = yield from call(calls.GET_QUEUE, tasks_v2.GetQueueRequest(name=name))
    return queues.Queue.from_message(response)


QueueConfig: TypeAlias = (
    "tuple[RateLimits | None, RetryConfig | None, QueueHttpTarget | None, AppEngineRouting | None]"
)


def create_queue(name: str, parent: str, config: QueueConfig) -> Op[Queue]:
    queue, _ = queues.build_queue_pb(name, *config)
    return (yield from _create_queue(parent, queue))


def update_queue(name: str, config: QueueConfig) -> Op[Queue]:
    queue, paths = queues.build_queue_pb(name, *config)
    if not paths:
        raise errors.UsageError(
            "update needs at least one of rate_limits, retry, http_target and app_engine_routing"
        )
    return (yield from _update_queue(queue, paths))


def ensure_queue(name: str, parent: str, config: QueueConfig) -> Op[Queue]:
    """Create the queue, or bring an existing one to the given config; an unchanged queue is not written."""
    wanted, paths = queues.build_queue_pb(name, *config)
    try:
        current = yield from get_queue(name)
    except errors.NotFound:
        try:
            return (yield from _create_queue(parent, wanted))
        except errors.AlreadyExists:  # created meanwhile by someone else: compare and update as usual
            current = yield from get_queue(name)
    if not paths or _matches(current, wanted, paths):
        return current
    return (yield from _update_queue(wanted, paths))


def _create_queue(parent: str, queue: Any) -> Op[Queue]:
    request = tasks_v2.CreateQueueRequest(parent=parent, queue=tasks_v2.Queue.wrap(queue))
    response = yield from call(calls.CREATE_QUEUE, request)
    return queues.Queue.from_message(response)


def _update_queue(queue: Any, paths: list[str]) -> Op[Queue]:
    request = tasks_v2.UpdateQueueRequest(queue=tasks_v2.Queue.wrap(queue), update_mask={"paths": paths})
    response = yield from call(calls.UPDATE_QUEUE, request)
    return queues.Queue.from_message(response)


def _matches(current: Queue, wanted: Any, paths: list[str]) -> bool:
    have = current.raw_pb
    for path in paths:
        head, _, leaf = path.partition(".")
        mine, theirs = getattr(have, head), getattr(wanted, head)
        if leaf:
            mine, theirs = getattr(mine, leaf), getattr(theirs, leaf)
        if mine != theirs:
            return False
    return True


def pause_queue(name: str) -> Op[Queue]:
    response = yield from call(calls.PAUSE_QUEUE, tasks_v2.PauseQueueRequest(name=name))
    return queues.Queue.from_message(response)


def resume_queue(name: str) -> Op[Queue]:
    response = yield from call(calls.RESUME_QUEUE, tasks_v2.ResumeQueueRequest(name=name))
    return queues.Queue.from_message(response)


def purge_queue(name: str) -> Op[Queue]:
    response = yield from call(calls.PURGE_QUEUE, tasks_v2.PurgeQueueRequest(name=name))
    return queues.Queue.from_message(response)


def delete_queue(name: str) -> Op[None]:
    yield from call(calls.DELETE_QUEUE, tasks_v2.DeleteQueueRequest(name=name))


def list_queues_page(parent: str, page_size: int | None, token: str) -> Op[tuple[list[Queue], str]]:
    if page_size is not None and not 1 <= page_size <= rules.LIST_QUEUES_MAX_PAGE:
        raise errors.ValidationError(
            "page_size", page_size, f"must be between 1 and {rules.LIST_QUEUES_MAX_PAGE}"
        )
    request = tasks_v2.ListQueuesRequest(parent=parent, page_size=page_size or 0, page_token=token)
    response = yield from call(calls.LIST_QUEUES, request)
    return [queues.Queue.from_message(q) for q in response.queues], str(response.next_page_token)
