"""The Cloud Tasks engine: queues, tasks, tombstones and dispatch, with no I/O and an injected clock.

:meth:`Engine.call` answers one call of the table (:mod:`cloudtasks_kit.transports.calls`) by name,
with the raw protobuf of its request, as the service would: the raw response, or the
``google.api_core`` exception the official gRPC client raises (with the service's status code and,
where known, its message). Each call is the engine method of the same name, or its
:class:`~cloudtasks_kit.engine.admin.Admin` part's. Faults injected in :attr:`Engine.faults` apply to
every call, on the fake and the emulator alike.

Dispatch is the :attr:`Engine.scheduler`'s: the drivers (:mod:`cloudtasks_kit.drivers`) take due
attempts from it, send them, and report what came back.
"""

from __future__ import annotations

import base64
import itertools
import math
import random
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as core
from google.cloud import tasks_v2
from google.protobuf import empty_pb2, field_mask_pb2

from .. import rules
from .._convert import set_seconds, to_seconds
from ..errors import StatusCode, ValidationError
from ..names import (
    check_queue_in_parent,
    check_task_in_queue,
    location_of_queue,
    parse_location_name,
    parse_queue_name,
    parse_task_name,
    task_path,
)
from ..transports.calls import RPCS, BufferTaskRequest
from . import attempts
from .admin import MAX_OPERATIONS, OPERATION_RETENTION, Admin
from .clock import Clock, SystemClock
from .faults import Faults
from .journal import Journal
from .messages import (
    NO_ROUTING,
    NOT_FOUND,
    QUEUE_EXISTS,
    QUEUE_MISSING,
    QUEUE_TOO_RECENT,
    TASK_EXISTS,
    TASK_GONE,
    TASK_IN_FLIGHT,
    TASK_TOO_RECENT,
)
from .scheduler import Scheduler
from .scheduling import burst_size_for
from .state import (
    DISABLED,
    PAUSED,
    PB_QUEUE,
    PB_TASK,
    RUNNING,
    QueueRecord,
    ServiceState,
    TaskRecord,
    fill_queue_defaults,
)
from .tokens import TokenSigner, default_signer

__all__ = ["Engine"]

_MUTABLE_QUEUE_FIELDS = (
    "rate_limits",
    "retry_config",
    "http_target",
    "app_engine_routing_override",
    "stackdriver_logging_config",
)
_OUTPUT_ONLY = frozenset({"name", "state", "purge_time", "rate_limits.max_burst_size"})
_PB_LIST_TASKS = tasks_v2.ListTasksResponse.pb()
_PB_LIST_QUEUES = tasks_v2.ListQueuesResponse.pb()
_PB_BATCH_RESPONSE = tasks_v2.BatchCreateTasksResponse.pb()
_PB_BATCH_METADATA = tasks_v2.BatchCreateTasksMetadata.pb()
_PB_DELETE_METADATA = tasks_v2.BatchDeleteTasksMetadata.pb()
_PB_EMPTY_RESPONSE = empty_pb2.Empty
# Enums by name, held as plain ints: proto-plus enum members compare an order of magnitude slower.
_BASIC, _FULL = int(tasks_v2.Task.View.BASIC), int(tasks_v2.Task.View.FULL)
_VIEWS = frozenset({int(tasks_v2.Task.View.VIEW_UNSPECIFIED), _BASIC, _FULL})
_SUCCEEDED = tasks_v2.BatchCreateTasksMetadata.State.SUCCEEDED
_PARTIALLY_SUCCEEDED = tasks_v2.BatchCreateTasksMetadata.State.PARTIALLY_SUCCEEDED
_OPERATION_RETENTION = OPERATION_RETENTION
# The calls that make a missing queue when ``auto_create_queues`` is set (as the fake always has).
_AUTO_CREATES = frozenset({"create_task", "batch_create_tasks"})


class Engine:
    """Cloud Tasks' behaviour as pure state: one instance is one project's worth of queues (any project).

    Args:
        clock: where "now" comes from (:class:`~cloudtasks_kit.engine.clock.ManualClock` in tests).
        limits: the configurable limits and tombstone windows.
        signer: signs OIDC tokens; by default one key per process, made on first use.
        seed: seeds generated task ids, for repeatable tests.
        auto_create_queues: create a missing queue, with default settings, on the first task created
            in it (the service answers NOT_FOUND; a convenience for tests and local development).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        limits: rules.Limits = rules.DEFAULT_LIMITS,
        signer: TokenSigner | None = None,
        seed: int | None = None,
        auto_create_queues: bool = False,
    ) -> None:
        self.clock = clock or SystemClock()
        self.auto_create_queues = auto_create_queues
        self.limits = limits
        self._signer = signer
        self.faults = Faults()
        """Failures to inject around calls (see :class:`~cloudtasks_kit.engine.faults.Faults`)."""
        self.state = ServiceState(self.clock.now)
        self.state.task_tombstone_window = limits.task_tombstone.total_seconds()
        self.scheduler = Scheduler(
            self.state, self.clock, lambda: self.signer, limits.max_retry_after.total_seconds()
        )
        self.admin = Admin(self.clock.now, self._queue)
        self._request_ids: dict[str, tuple[float, Any]] = {}
        self._rng = random.Random(seed)
        self._handlers: dict[str, Callable[[Any], Any]] = {
            name: getattr(self, name, None) or getattr(self.admin, name) for name in RPCS
        }

    def call(self, name: str, request: Any) -> Any:
        """Answer one call of the table: the raw request in, the raw response out (None for Empty).

        Faults planned for ``name`` apply; the kit's rule violations are answered INVALID_ARGUMENT with the
        same message, as the service does.
        """
        try:
            if self.auto_create_queues and name in _AUTO_CREATES:
                self._ensure_queue(request.parent)
            faults = self.faults
            if faults.planned:
                return faults.around(name, self._answer, name, request)
            return self._answer(name, request)  # the usual case: no fault planned, one call less
        finally:
            self.state.journal.commit()  # durable before the caller hears the answer

    def _ensure_queue(self, name: str) -> None:
        if name and name not in self.state.queues and location_of_queue(name):
            request = tasks_v2.CreateQueueRequest.pb()(parent=location_of_queue(name))
            request.queue.name = name
            self.create_queue(request)

    def _answer(self, name: str, request: Any) -> Any:
        try:
            return self._handlers[name](request)
        except ValidationError as exc:
            raise core.InvalidArgument(str(exc)) from None

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            self._signer = default_signer()
        return self._signer

    @property
    def journal(self) -> Journal:
        """Hears every change of the state (:mod:`~cloudtasks_kit.engine.journal`); keeps nothing by default."""
        return self.state.journal

    @journal.setter
    def journal(self, journal: Journal) -> None:
        self.state.journal = journal

    @property
    def on_change(self) -> Callable[[], None] | None:
        """Called when something may have become due sooner (a new task, a resumed queue)."""
        return self.state.on_change

    @on_change.setter
    def on_change(self, callback: Callable[[], None] | None) -> None:
        self.state.on_change = callback

    # Lookups.

    def _queue(self, name: str, missing: str = QUEUE_MISSING) -> QueueRecord:
        """The queue called ``name``, or NOT_FOUND with ``missing``: the service's recorded answer to
        Get/Pause/Resume/Purge and CreateTask is QUEUE_MISSING, to DeleteQueue the generic NOT_FOUND
        (aertje/cloud-tasks-emulator conformance/golden/realcloud.json)."""
        record = self.state.queues.get(name)
        if record is None:
            parse_queue_name(name)  # a malformed name is INVALID_ARGUMENT, a well-formed one NOT_FOUND
            raise core.NotFound(missing)
        return record

    def _task(self, name: str) -> TaskRecord:
        parsed = parse_task_name(name)
        queue = self._queue(parsed.queue_path, NOT_FOUND)
        record = queue.tasks.get(parsed.task)
        if record is None:
            if self.state.recently(self.state.task_tombstones, name):
                raise core.NotFound(TASK_GONE)
            raise core.NotFound(NOT_FOUND)
        return record

    # Queues.

    def list_queues(self, request: Any) -> Any:
        parse_location_name(request.parent)
        # "Queues are returned in lexicographical order" (ListQueues, v2 RPC reference). The page token is
        # the last name returned, so queues created or deleted between pages neither repeat nor skip.
        after = _decode_name_token(request.page_token)
        names = sorted(
            name
            for name in self.state.queues
            if location_of_queue(name) == request.parent and (after is None or name > after)
        )
        queues = [self.state.queues[name] for name in names]
        state_filter = _state_filter(request.filter)
        if state_filter is not None:
            queues = [q for q in queues if q.pb.state == state_filter]
        size = _page_size(request.page_size, rules.LIST_QUEUES_MAX_PAGE)
        response = _PB_LIST_QUEUES()
        for queue in queues[:size]:
            response.queues.add().CopyFrom(queue.pb)
        if size < len(queues):
            response.next_page_token = _encode_name_token(queues[size - 1].name)
        return response

    def get_queue(self, request: Any) -> Any:
        return _copy(self._queue(request.name).pb)

    def create_queue(self, request: Any) -> Any:
        parse_location_name(request.parent)
        queue = request.queue
        parse_queue_name(queue.name)
        check_queue_in_parent(queue.name, request.parent)
        rules.check_queue_config(queue)
        if queue.name in self.state.queues:
            raise core.AlreadyExists(QUEUE_EXISTS)
        return self._new_queue(queue)

    def _new_queue(self, queue: Any) -> Any:
        if self.state.recently(self.state.queue_tombstones, queue.name):
            raise core.FailedPrecondition(QUEUE_TOO_RECENT)
        stored = PB_QUEUE()
        stored.name = queue.name
        for field in _MUTABLE_QUEUE_FIELDS:
            if queue.HasField(field):
                getattr(stored, field).CopyFrom(getattr(queue, field))
        fill_queue_defaults(stored)
        record = QueueRecord(stored, self.clock.now())
        self.state.queues[stored.name] = record
        self.state.journal.queue_created(record)
        return _copy(stored)

    def update_queue(self, request: Any) -> Any:
        queue = request.queue
        parse_queue_name(queue.name)
        rules.check_queue_config(queue)
        paths = list(request.update_mask.paths) if request.HasField("update_mask") else []
        for path in paths:
            if path in _OUTPUT_ONLY or not _valid_path(path):
                raise ValidationError("update_mask path", path, "is not an updatable Queue field")
        record = self.state.queues.get(queue.name)
        if record is None:  # UpdateQueue creates a missing queue
            return self._new_queue(queue)
        updated = _copy(record.pb)
        if paths:
            mask = field_mask_pb2.FieldMask(paths=paths)
            mask.MergeMessage(queue, updated, replace_message_field=True, replace_repeated_field=True)
        else:
            for field in _MUTABLE_QUEUE_FIELDS:
                updated.ClearField(field)
                if queue.HasField(field):
                    getattr(updated, field).CopyFrom(getattr(queue, field))
            fill_queue_defaults(updated)
        rules.check_queue_config(
            updated
        )  # the result as a whole (min_backoff <= max_backoff...), kept only if valid
        stored = record.pb
        stored.CopyFrom(updated)
        stored.rate_limits.max_burst_size = burst_size_for(stored.rate_limits.max_dispatches_per_second)
        record.config_changed(self.clock.now())
        self.state.journal.queue_changed(record)
        self.state.changed(record)
        return _copy(stored)

    def delete_queue(self, request: Any) -> None:
        record = self._queue(request.name, NOT_FOUND)
        for task in record.tasks.values():
            task.alive = False
        del self.state.queues[request.name]
        expiry = self.state.bury(
            self.state.queue_tombstones, request.name, self.limits.queue_tombstone.total_seconds()
        )
        self.state.journal.queue_deleted(request.name, expiry)

    def purge_queue(self, request: Any) -> Any:
        record = self._queue(request.name)
        window = self.limits.task_tombstone.total_seconds()
        for task in record.tasks.values():
            task.alive = False
            expiry = self.state.bury(self.state.task_tombstones, task.pb.name, window)
            self.state.journal.task_deleted(task, expiry)
        record.clear()
        set_seconds(record.pb.purge_time, self.clock.now())
        self.state.journal.queue_changed(record)
        return _copy(record.pb)

    def pause_queue(self, request: Any) -> Any:
        return self._set_state(request.name, PAUSED)

    def resume_queue(self, request: Any) -> Any:
        return self._set_state(request.name, RUNNING)

    def _set_state(self, name: str, state: int) -> Any:
        record = self._queue(name)
        record.pb.state = state
        self.state.journal.queue_changed(record)
        self.state.changed(record)
        return _copy(record.pb)

    def disable_queue(self, name: str) -> None:
        """Put a queue in the DISABLED state (the API cannot; a queue.yaml upload does). Tasks stay."""
        record = self._queue(name)
        record.pb.state = DISABLED
        self.state.journal.queue_changed(record)
        self.state.journal.commit()

    # Tasks.

    def list_tasks(self, request: Any) -> Any:
        queue = self._queue(request.parent)
        size = _page_size(request.page_size, rules.LIST_TASKS_MAX_PAGE)
        after = _decode_token(request.page_token)
        view = _check_view(request.response_view)
        response = _PB_LIST_TASKS()
        remaining = queue.tasks_after(after)
        last = None
        for record in itertools.islice(remaining, size):
            _view_into(response.tasks.add(), record.pb, view)
            last = record
        if last is not None and next(remaining, None) is not None:
            response.next_page_token = _encode_token(last.seq)
        return response

    def get_task(self, request: Any) -> Any:
        return _view(self._task(request.name).pb, _check_view(request.response_view))

    def create_task(self, request: Any) -> Any:
        _check_view(request.response_view)
        queue = self._queue(request.parent)
        # A request the kit's builder checked a moment ago in this thread (the fake) is not checked twice.
        record = self._add_task(queue, request.task, checked=rules.vouched(request, self.limits))
        self.state.changed(queue)
        return _view(record.pb, request.response_view)

    def _add_task(self, queue: QueueRecord, task: Any, *, checked: bool = False) -> TaskRecord:
        now = self.clock.now()
        if not checked:
            routes = bool(queue.pb.http_target.uri_override.host)
            rules.check_task_message(
                task, queue_name=queue.name, now=now, limits=self.limits, queue_routes=routes
            )
        if task.name:
            task_id = check_task_in_queue(task.name, queue.name)
            if task_id in queue.tasks:
                raise core.AlreadyExists(TASK_EXISTS)
            if self.state.recently(self.state.task_tombstones, task.name):
                raise core.AlreadyExists(TASK_TOO_RECENT)
        else:
            task_id = self._new_task_id(queue)
        stored = PB_TASK()
        stored.CopyFrom(task)
        stored.name = task_path(queue.name, task_id)
        if stored.HasField("app_engine_http_request"):
            _normalise_app_engine(stored, queue.pb)
        elif checked:  # a builder refused reserved headers already (strict): only the User-Agent to add
            stored.http_request.headers["User-Agent"] = rules.USER_AGENT
        else:
            _normalise_headers(stored.http_request.headers)
        # "create_time will be truncated to the nearest second" (Task, v2 reference): whole seconds.
        created = stored.create_time
        created.seconds, created.nanos = math.floor(now), 0
        # "If schedule_time is not set or is in the past then Cloud Tasks will set it to the current time"
        # (CreateTaskRequest.task): the stored time, the answer and X-CloudTasks-TaskETA all say now.
        eta = to_seconds(stored.schedule_time) if stored.HasField("schedule_time") else now
        if eta <= now:
            eta = now
            set_seconds(stored.schedule_time, now)
        seq = next(self.state.counter)
        record = TaskRecord(stored, queue, task_id, seq, eta)
        queue.add(record)
        self.state.journal.task_created(record)
        return record

    def _new_task_id(self, queue: QueueRecord) -> str:
        while True:
            # 19 digits, as the service's ids; getrandbits is a C call where randrange is Python code.
            candidate = str(_ID_FLOOR + self._rng.getrandbits(63) % _ID_SPAN)
            if candidate not in queue.tasks:
                return candidate

    def batch_create_tasks(self, request: Any) -> Any:
        """BatchCreateTasks, run to its end: the finished ``Operation`` (response and metadata packed).

        A ``request_id`` seen in the last hour returns that run's operation again without creating anything.
        """
        cached = self._seen_request(request.request_id)
        if cached is not None:
            return cached
        queue = self._queue(request.parent)
        if len(request.requests) > rules.BATCH_CREATE_MAX:
            raise ValidationError("requests", f"{len(request.requests)} requests", "may hold at most 100")
        for inner in request.requests:
            _check_view(inner.response_view)
            if inner.parent != request.parent:
                raise ValidationError(
                    "requests[].parent", inner.parent, f"must equal the batch parent {request.parent}"
                )
        now = self.clock.now()
        response, metadata = _PB_BATCH_RESPONSE(), _PB_BATCH_METADATA()
        set_seconds(metadata.start_time, now)
        for index, inner in enumerate(request.requests):
            try:
                record = self._add_task(queue, inner.task)
            except (ValidationError, core.GoogleAPICallError) as exc:
                _fail(metadata, index, exc)
            else:
                _view_into(response.tasks.add(), record.pb, inner.response_view)
        set_seconds(metadata.end_time, now)
        metadata.state = _PARTIALLY_SUCCEEDED if metadata.failed_requests else _SUCCEEDED
        self.state.changed(queue)
        return self._finish_operation(request, response, metadata)

    def batch_delete_tasks(self, request: Any) -> Any:
        """BatchDeleteTasks, run to its end: the finished ``Operation``."""
        cached = self._seen_request(request.request_id)
        if cached is not None:
            return cached
        self._queue(request.parent)
        if len(request.names) > rules.BATCH_DELETE_MAX:
            raise ValidationError("names", f"{len(request.names)} names", "may hold at most 1000")
        metadata = _PB_DELETE_METADATA()
        set_seconds(metadata.start_time, self.clock.now())
        for index, name in enumerate(request.names):
            try:
                self.state.delete_task(self._task(name))
            except (ValidationError, core.GoogleAPICallError) as exc:
                _fail(metadata, index, exc)
        set_seconds(metadata.end_time, self.clock.now())
        metadata.state = _PARTIALLY_SUCCEEDED if metadata.failed_requests else _SUCCEEDED
        return self._finish_operation(request, _PB_EMPTY_RESPONSE(), metadata)

    def _seen_request(self, request_id: str) -> Any:
        if not request_id:
            return None
        now = self.clock.now()
        ids = self._request_ids
        while ids:  # insertion order is expiry order; kept as many as the operations they replay
            oldest = next(iter(ids))
            if ids[oldest][0] > now and len(ids) <= MAX_OPERATIONS:
                break
            del ids[oldest]
        cached = self._request_ids.get(request_id)
        return None if cached is None else cached[1]

    def _finish_operation(self, request: Any, response: Any, metadata: Any) -> Any:
        operation = self.admin.operation(request.parent, response, metadata)
        if request.request_id:
            self._request_ids[request.request_id] = (self.clock.now() + _OPERATION_RETENTION, operation)
        return operation

    def delete_task(self, request: Any) -> None:
        self.state.delete_task(self._task(request.name))

    def run_task(self, request: Any) -> Any:
        _check_view(request.response_view)
        record = self._task(request.name)
        if record.in_flight:
            raise core.FailedPrecondition(TASK_IN_FLIGHT)
        self.scheduler.start_now(record)
        return _view(record.pb, request.response_view)

    def buffer_task(self, request: BufferTaskRequest) -> Any:
        """BufferTask: a task from a raw HTTP request, routed by the queue's HTTP target (BASIC view)."""
        queue = self._queue(request.queue)
        target = queue.pb.http_target
        if not target.uri_override.host:
            raise core.FailedPrecondition(NO_ROUTING)
        task = PB_TASK()
        if request.task_id is not None:
            task.name = task_path(request.queue, rules.check_task_id(request.task_id))
        http = task.http_request
        http.url = attempts.apply_uri_override("", target.uri_override)
        method_name = request.method.upper()
        if method_name not in rules.METHOD_VALUES:
            raise ValidationError("method", request.method, "is not an HTTP method Cloud Tasks delivers")
        http.http_method = target.http_method or rules.METHOD_VALUES[method_name]
        for key, value in request.headers.items():
            if key.lower() not in _NOT_CARRIED and not rules.reserved_header(key):
                http.headers[_utf8(key, "header name")] = _utf8(value, f"header {key[:40]!r}")
        if request.body:
            http.body = request.body
        record = self._add_task(queue, task)
        self.state.changed(queue)
        return _view(record.pb, _BASIC)

    def queue_names(self) -> list[str]:
        return list(self.state.queues)

    def tasks_of(self, queue_name: str) -> list[Any]:
        """The FULL protobufs of a queue's tasks, in creation order (for inspection in tests)."""
        return [record.pb for record in self._queue(queue_name).tasks.values()]

    def queue_pb(self, queue_name: str) -> Any:
        return self._queue(queue_name).pb


_NOT_CARRIED = frozenset(
    {
        "authorization",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "proxy-authorization",
        "x-goog-request-params",
        "x-goog-api-client",
        "accept-encoding",
    }
)


def _normalise_headers(headers: Any) -> None:
    """As the service stores them: reserved headers dropped, ``User-Agent: Google-Cloud-Tasks``."""
    for name in [name for name in headers if rules.reserved_header(name)]:
        del headers[name]
    headers["User-Agent"] = rules.USER_AGENT


def _normalise_app_engine(task: Any, queue: Any) -> None:
    """As the service stores an App Engine task: Host, X-Google-* and X-AppEngine-* dropped, and the
    routing's output-only ``host`` filled in."""
    headers = task.app_engine_http_request.headers
    for name in [name for name in headers if rules.app_engine_reserved_header(name)]:
        del headers[name]
    task.app_engine_http_request.app_engine_routing.host = attempts.app_engine_host(task, queue)


_ID_FLOOR, _ID_SPAN = 10**18, 9 * 10**18


def _copy(message: Any) -> Any:
    out = type(message)()
    out.CopyFrom(message)
    return out


def _view(task: Any, view: int) -> Any:
    return _view_into(PB_TASK(), task, view)


def _view_into(out: Any, task: Any, view: int) -> Any:
    out.CopyFrom(task)
    if view == _FULL:
        out.view = _FULL
    else:
        out.view = _BASIC
        if out.HasField("app_engine_http_request"):
            out.app_engine_http_request.ClearField("body")
        else:
            out.http_request.ClearField("body")
    return out


def _fail(metadata: Any, index: int, error: ValidationError | core.GoogleAPICallError) -> None:
    status = metadata.failed_requests[index]
    if isinstance(error, ValidationError):
        status.code, status.message = StatusCode.INVALID_ARGUMENT, str(error)
    else:
        status.code, status.message = error.grpc_status_code.value[0], error.message


def _page_size(requested: int, maximum: int) -> int:
    if requested < 0:
        raise ValidationError("page_size", requested, "must not be negative (0 or unset: the default)")
    return min(requested or maximum, maximum)


def _check_view(view: int) -> int:
    if view not in _VIEWS:
        raise ValidationError("response_view", view, "must be VIEW_UNSPECIFIED, BASIC or FULL (0, 1 or 2)")
    return view


def _utf8(text: str, field: str) -> str:
    """Protobuf strings are UTF-8: a value that cannot be one (a lone surrogate from bytes that were not
    UTF-8) is refused rather than failing later."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            field, text.encode("utf-8", "backslashreplace")[:80], "must be valid UTF-8"
        ) from None
    return text


def _encode_token(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode()


def _decode_token(token: str) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("page_token", token, "is not a token this server gave out") from None


def _encode_name_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_name_token(token: str) -> str | None:
    """The queue name a ListQueues page token carries (the last one of the page before)."""
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("page_token", token, "is not a token this server gave out") from None


def _state_filter(text: str) -> int | None:
    if not text:
        return None
    for separator in (":", "="):
        field, sep, value = text.partition(separator)
        if sep and field.strip() == "state":
            states = {"RUNNING": RUNNING, "PAUSED": PAUSED, "DISABLED": DISABLED}
            state = states.get(value.strip().strip('"'))
            if state is not None:
                return state
    raise ValidationError("filter", text, "supports only 'state: RUNNING|PAUSED|DISABLED' here")


def _valid_path(path: str) -> bool:
    """A field path of Queue (``rate_limits.max_dispatches_per_second``)."""
    descriptor = PB_QUEUE.DESCRIPTOR
    parts = path.split(".")
    for depth, part in enumerate(parts):
        field = descriptor.fields_by_name.get(part) if descriptor is not None else None
        if field is None:
            return False
        descriptor = field.message_type
        if descriptor is None and depth < len(parts) - 1:
            return False
    return True
