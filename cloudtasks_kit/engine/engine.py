"""The Cloud Tasks engine: queues, tasks, tombstones and dispatch, with no I/O and an injected clock.

RPC methods take and return the raw protobufs of the official request and response messages, and raise
what the official gRPC client raises (``google.api_core`` exceptions with the service's status code and,
where known, its message). Two drivers move dispatch: the deterministic one of the fake (virtual time)
and the real-time one of the emulator. Both call :meth:`Engine.take_due`, send each
:class:`~cloudtasks_kit.engine.delivery.Dispatch`, and report back with :meth:`Engine.finish`.
"""

from __future__ import annotations

import base64
import collections
import functools
import heapq
import itertools
import random
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as core
from google.cloud import tasks_v2
from google.protobuf import field_mask_pb2

from .. import rules
from .._convert import set_seconds
from ..errors import ValidationError
from ..names import parse_location_name, parse_queue_name, parse_task_name
from . import delivery
from .clock import Clock, SystemClock
from .dispatching import Dispatching
from .scheduling import burst_size_for
from .state import (
    PAUSED,
    PB_QUEUE,
    PB_TASK,
    RUNNING,
    QueueRecord,
    TaskRecord,
    fill_queue_defaults,
)
from .tokens import TokenSigner, default_signer

__all__ = ["Engine"]

F = TypeVar("F", bound=Callable[..., Any])

NOT_FOUND = "Requested entity was not found."
TASK_GONE = (
    "The task no longer exists, though a task with this name existed recently. "
    "The task either successfully completed or was deleted."
)
TASK_TOO_RECENT = "The task cannot be created because a task with this name existed too recently."
TASK_EXISTS = "Requested entity already exists"
QUEUE_TOO_RECENT = "The queue cannot be created because a queue with this name existed too recently."
NO_ROUTING = "BufferTask needs queue-level routing: the queue's http_target.uri_override must set a host"
_MUTABLE_QUEUE_FIELDS = ("rate_limits", "retry_config", "http_target", "stackdriver_logging_config")
_OUTPUT_ONLY = frozenset({"name", "state", "purge_time", "rate_limits.max_burst_size"})
_PB_LIST_TASKS = tasks_v2.ListTasksResponse.pb()
_PB_LIST_QUEUES = tasks_v2.ListQueuesResponse.pb()
_PB_BATCH_RESPONSE = tasks_v2.BatchCreateTasksResponse.pb()
_PB_BATCH_METADATA = tasks_v2.BatchCreateTasksMetadata.pb()
_PB_DELETE_METADATA = tasks_v2.BatchDeleteTasksMetadata.pb()
_FULL = 2


def rpc(method: F) -> F:
    """Answer the kit's rule violations as the service does: INVALID_ARGUMENT with the same message."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except ValidationError as exc:
            raise core.InvalidArgument(str(exc)) from None

    return wrapper  # type: ignore[return-value]


class Engine(Dispatching):
    """Cloud Tasks' behaviour as pure state: one instance is one project's worth of queues (any project).

    Args:
        clock: where "now" comes from (:class:`~cloudtasks_kit.engine.clock.ManualClock` in tests).
        limits: the configurable limits and tombstone windows.
        signer: signs OIDC tokens; by default one key per process, made on first use.
        seed: seeds generated task ids, for repeatable tests.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        limits: rules.Limits = rules.DEFAULT_LIMITS,
        signer: TokenSigner | None = None,
        seed: int | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.limits = limits
        self._signer = signer
        self._queues: dict[str, QueueRecord] = {}
        self._task_tombstones: dict[str, float] = {}
        self._queue_tombstones: dict[str, float] = {}
        self._operations: dict[str, tuple[float, Any, Any]] = {}
        self._forced: collections.deque[TaskRecord] = collections.deque()
        self._counter = itertools.count(1)
        self._rng = random.Random(seed)
        self.on_change: Callable[[], None] | None = None
        """Called when something may have become due sooner (a new task, a resumed queue)."""

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            self._signer = default_signer()
        return self._signer

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # Lookups.

    def _queue(self, name: str) -> QueueRecord:
        record = self._queues.get(name)
        if record is None:
            parse_queue_name(name)  # a malformed name is INVALID_ARGUMENT, a well-formed one NOT_FOUND
            raise core.NotFound(NOT_FOUND)
        return record

    def _task(self, name: str) -> TaskRecord:
        parsed = parse_task_name(name)
        queue = self._queue(parsed.queue_path)
        record = queue.tasks.get(parsed.task)
        if record is None:
            if self._recently(self._task_tombstones, name):
                raise core.NotFound(TASK_GONE)
            raise core.NotFound(NOT_FOUND)
        return record

    def _recently(self, tombstones: dict[str, float], name: str) -> bool:
        expiry = tombstones.get(name)
        if expiry is None:
            return False
        if expiry > self.clock.now():
            return True
        del tombstones[name]
        return False

    def _bury(self, tombstones: dict[str, float], name: str, window: float) -> None:
        now = self.clock.now()
        tombstones[name] = now + window
        if len(tombstones) % 4096 == 0:  # now and then, forget the expired ones
            for key in [k for k, expiry in tombstones.items() if expiry <= now]:
                del tombstones[key]

    # Queues.

    @rpc
    def list_queues(self, request: Any) -> Any:
        parse_location_name(request.parent)
        prefix = request.parent + "/queues/"
        queues = [q for name, q in self._queues.items() if name.startswith(prefix)]
        state_filter = _state_filter(request.filter)
        if state_filter is not None:
            queues = [q for q in queues if q.pb.state == state_filter]
        size = min(request.page_size or rules.LIST_QUEUES_MAX_PAGE, rules.LIST_QUEUES_MAX_PAGE)
        start = _decode_token(request.page_token)
        response = _PB_LIST_QUEUES()
        for queue in queues[start : start + size]:
            response.queues.add().CopyFrom(queue.pb)
        if start + size < len(queues):
            response.next_page_token = _encode_token(start + size)
        return response

    @rpc
    def get_queue(self, request: Any) -> Any:
        return _copy(self._queue(request.name).pb)

    @rpc
    def create_queue(self, request: Any) -> Any:
        parse_location_name(request.parent)
        queue = request.queue
        rules.check_queue_message(queue, parent=request.parent)
        if queue.name in self._queues:
            raise core.AlreadyExists(TASK_EXISTS)
        return self._new_queue(queue)

    def _new_queue(self, queue: Any) -> Any:
        if self._recently(self._queue_tombstones, queue.name):
            raise core.FailedPrecondition(QUEUE_TOO_RECENT)
        stored = PB_QUEUE()
        stored.name = queue.name
        for field in _MUTABLE_QUEUE_FIELDS:
            if queue.HasField(field):
                getattr(stored, field).CopyFrom(getattr(queue, field))
        fill_queue_defaults(stored)
        self._queues[stored.name] = QueueRecord(stored, self.clock.now())
        return _copy(stored)

    @rpc
    def update_queue(self, request: Any) -> Any:
        queue = request.queue
        rules.check_queue_message(queue)
        paths = list(request.update_mask.paths) if request.HasField("update_mask") else []
        for path in paths:
            if path in _OUTPUT_ONLY or not _valid_path(path):
                raise ValidationError("update_mask path", path, "is not an updatable Queue field")
        record = self._queues.get(queue.name)
        if record is None:  # UpdateQueue creates a missing queue
            return self._new_queue(queue)
        stored = record.pb
        if paths:
            mask = field_mask_pb2.FieldMask(paths=paths)
            mask.MergeMessage(queue, stored, replace_message_field=True, replace_repeated_field=True)
        else:
            for field in _MUTABLE_QUEUE_FIELDS:
                stored.ClearField(field)
                if queue.HasField(field):
                    getattr(stored, field).CopyFrom(getattr(queue, field))
            fill_queue_defaults(stored)
        stored.rate_limits.max_burst_size = burst_size_for(stored.rate_limits.max_dispatches_per_second)
        record.config_changed(self.clock.now())
        self._changed()
        return _copy(stored)

    @rpc
    def delete_queue(self, request: Any) -> None:
        record = self._queue(request.name)
        for task in record.tasks.values():
            task.alive = False
        del self._queues[request.name]
        self._bury(self._queue_tombstones, request.name, self.limits.queue_tombstone.total_seconds())

    @rpc
    def purge_queue(self, request: Any) -> Any:
        record = self._queue(request.name)
        window = self.limits.task_tombstone.total_seconds()
        for task in record.tasks.values():
            task.alive = False
            self._bury(self._task_tombstones, task.pb.name, window)
        record.tasks.clear()
        record.heap.clear()
        set_seconds(record.pb.purge_time, self.clock.now())
        return _copy(record.pb)

    @rpc
    def pause_queue(self, request: Any) -> Any:
        return self._set_state(request.name, PAUSED)

    @rpc
    def resume_queue(self, request: Any) -> Any:
        return self._set_state(request.name, RUNNING)

    def _set_state(self, name: str, state: int) -> Any:
        record = self._queue(name)
        record.pb.state = state
        self._changed()
        return _copy(record.pb)

    def disable_queue(self, name: str) -> None:
        """Put a queue in the DISABLED state (the API cannot; a queue.yaml upload does). Tasks stay."""
        self._queue(name).pb.state = 3

    # Tasks.

    @rpc
    def list_tasks(self, request: Any) -> Any:
        queue = self._queue(request.parent)
        size = min(request.page_size or rules.LIST_TASKS_MAX_PAGE, rules.LIST_TASKS_MAX_PAGE)
        after = _decode_token(request.page_token)
        view = request.response_view
        response = _PB_LIST_TASKS()
        remaining = itertools.dropwhile(lambda record: record.seq <= after, queue.tasks.values())
        last = None
        for record in itertools.islice(remaining, size):
            _view_into(response.tasks.add(), record.pb, view)
            last = record
        if last is not None and next(remaining, None) is not None:
            response.next_page_token = _encode_token(last.seq)
        return response

    @rpc
    def get_task(self, request: Any) -> Any:
        return _view(self._task(request.name).pb, request.response_view)

    @rpc
    def create_task(self, request: Any) -> Any:
        queue = self._queue(request.parent)
        record = self._add_task(queue, request.task)
        self._changed()
        return _view(record.pb, request.response_view)

    def _add_task(self, queue: QueueRecord, task: Any) -> TaskRecord:
        now = self.clock.now()
        override = queue.pb.http_target.uri_override
        rules.check_task_message(
            task, queue_name=queue.name, now=now, limits=self.limits, queue_routes=bool(override.host)
        )
        if task.name:
            task_id = task.name.rsplit("/", 1)[-1]
            if task_id in queue.tasks:
                raise core.AlreadyExists(TASK_EXISTS)
            if self._recently(self._task_tombstones, task.name):
                raise core.AlreadyExists(TASK_TOO_RECENT)
        else:
            task_id = self._new_task_id(queue)
        stored = PB_TASK()
        stored.CopyFrom(task)
        stored.name = f"{queue.name}/tasks/{task_id}"
        _normalise_headers(stored.http_request.headers)
        set_seconds(stored.create_time, now)
        if not stored.HasField("schedule_time"):
            set_seconds(stored.schedule_time, now)
        seq = next(self._counter)
        record = TaskRecord(stored, queue, task_id, seq)
        queue.tasks[task_id] = record
        heapq.heappush(queue.heap, (record.eta, seq, record))
        return record

    def _new_task_id(self, queue: QueueRecord) -> str:
        while True:
            candidate = str(self._rng.randrange(10**18, 10**19))
            if candidate not in queue.tasks:
                return candidate

    @rpc
    def batch_create_tasks(self, request: Any) -> tuple[Any, Any]:
        """BatchCreateTasks to its end: ``(BatchCreateTasksResponse, BatchCreateTasksMetadata)``.

        A ``request_id`` seen in the last hour returns that run's result again without creating anything.
        """
        cached = self._cached_operation(request.request_id)
        if cached is not None:
            return cached
        queue = self._queue(request.parent)
        if len(request.requests) > rules.BATCH_CREATE_MAX:
            raise ValidationError("requests", f"{len(request.requests)} requests", "may hold at most 100")
        for inner in request.requests:
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
            except ValidationError as exc:
                _fail(metadata, index, 3, str(exc))
            except core.GoogleAPICallError as exc:
                _fail(metadata, index, exc.grpc_status_code.value[0], exc.message)
            else:
                _view_into(response.tasks.add(), record.pb, inner.response_view)
        set_seconds(metadata.end_time, now)
        metadata.state = 5 if metadata.failed_requests else 2  # PARTIALLY_SUCCEEDED, SUCCEEDED
        self._changed()
        return self._remember_operation(request.request_id, response, metadata)

    @rpc
    def batch_delete_tasks(self, request: Any) -> Any:
        """BatchDeleteTasks to its end: the ``BatchDeleteTasksMetadata``."""
        cached = self._cached_operation(request.request_id)
        if cached is not None:
            return cached[1]
        self._queue(request.parent)
        if len(request.names) > rules.BATCH_DELETE_MAX:
            raise ValidationError("names", f"{len(request.names)} names", "may hold at most 1000")
        metadata = _PB_DELETE_METADATA()
        set_seconds(metadata.start_time, self.clock.now())
        for index, name in enumerate(request.names):
            try:
                self._delete(self._task(name))
            except ValidationError as exc:
                _fail(metadata, index, 3, str(exc))
            except core.GoogleAPICallError as exc:
                _fail(metadata, index, exc.grpc_status_code.value[0], exc.message)
        set_seconds(metadata.end_time, self.clock.now())
        metadata.state = 5 if metadata.failed_requests else 2
        return self._remember_operation(request.request_id, None, metadata)[1]

    def _cached_operation(self, request_id: str) -> tuple[Any, Any] | None:
        if not request_id:
            return None
        cached = self._operations.get(request_id)
        if cached is None or cached[0] <= self.clock.now():
            return None
        return cached[1], cached[2]

    def _remember_operation(self, request_id: str, response: Any, metadata: Any) -> tuple[Any, Any]:
        if request_id:
            self._operations[request_id] = (self.clock.now() + 3600.0, response, metadata)
        return response, metadata

    @rpc
    def delete_task(self, request: Any) -> None:
        self._delete(self._task(request.name))

    def _delete(self, record: TaskRecord) -> None:
        record.alive = False
        del record.queue.tasks[record.id]
        self._bury(self._task_tombstones, record.pb.name, self.limits.task_tombstone.total_seconds())

    @rpc
    def run_task(self, request: Any) -> Any:
        record = self._task(request.name)
        if record.in_flight:
            raise core.FailedPrecondition(
                "The task is being dispatched; RunTask waits for that attempt to end."
            )
        record.forced = True
        record.reschedule(self.clock.now(), next(self._counter))
        self._forced.append(record)
        self._changed()
        return _view(record.pb, request.response_view)

    @rpc
    def buffer_task(
        self, queue_name: str, task_id: str | None, method: str, headers: dict[str, str], body: bytes
    ) -> Any:
        """BufferTask: a task from a raw HTTP request, routed by the queue's HTTP target (BASIC view)."""
        queue = self._queue(queue_name)
        target = queue.pb.http_target
        if not target.uri_override.host:
            raise core.FailedPrecondition(NO_ROUTING)
        task = PB_TASK()
        if task_id is not None:
            task.name = f"{queue_name}/tasks/{rules.check_task_id(task_id)}"
        request = task.http_request
        request.url = delivery.apply_uri_override("", target.uri_override)
        method_name = method.upper()
        if method_name not in rules.METHOD_VALUES:
            raise ValidationError("method", method, "is not an HTTP method Cloud Tasks delivers")
        request.http_method = target.http_method or rules.METHOD_VALUES[method_name]
        for key, value in headers.items():
            if key.lower() not in _NOT_CARRIED and not rules.reserved_header(key):
                request.headers[key] = value
        if body:
            request.body = body
        record = self._add_task(queue, task)
        self._changed()
        return _view(record.pb, 1)

    def queue_names(self) -> list[str]:
        return list(self._queues)

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
    reserved = [name for name in headers if rules.reserved_header(name)]
    for name in reserved:
        del headers[name]
    headers["User-Agent"] = rules.USER_AGENT


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
        out.view = 1
        out.http_request.ClearField("body")
    return out


def _fail(metadata: Any, index: int, code: int, message: str) -> None:
    status = metadata.failed_requests[index]
    status.code = code
    status.message = message


def _encode_token(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode()


def _decode_token(token: str) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("page_token", token, "is not a token this server gave out") from None


def _state_filter(text: str) -> int | None:
    if not text:
        return None
    for separator in (":", "="):
        field, sep, value = text.partition(separator)
        if sep and field.strip() == "state":
            states = {"RUNNING": RUNNING, "PAUSED": PAUSED, "DISABLED": 3}
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
