"""The table of Cloud Tasks v2 calls: every RPC written once, with its types and its REST route.

Each row is an :class:`Rpc`: its snake_case name (the method of the official client, of the engine and of
fault injection), its gRPC service and method, the request and response types that cross the transport
seam, and its HTTP binding (verb, path template and body field, as in Google's ``google.api.http``
annotations). Everything that speaks the API is derived from this table instead of spelling the calls out:

- the gRPC and REST transports pass each row to the official client (:mod:`.grpc`, :mod:`.rest`);
- the fake hands each row to the engine (:mod:`.fake`);
- the emulator's gRPC server registers one handler per row and its REST server one route per binding.

Adding an RPC is one row here and one engine method of the same name. The seam is typed: an
``Rpc[CreateTaskRequest, Task]`` makes :meth:`Transport.call <cloudtasks_kit.transports.base.Transport.call>`
return a ``Task``, so ``mypy --strict`` checks the path from the transport to the facade's result.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

from google.cloud import tasks_v2
from google.cloud.location import locations_pb2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

__all__ = [
    "RPCS",
    "BatchCreateResult",
    "BufferTaskRequest",
    "HttpRule",
    "Rpc",
    "batch_result",
]

ReqT = TypeVar("ReqT")
RespT = TypeVar("RespT")
M = TypeVar("M")

CLOUD_TASKS = "google.cloud.tasks.v2.CloudTasks"
OPERATIONS = "google.longrunning.Operations"
LOCATIONS = "google.cloud.location.Locations"

Kind = Literal["unary", "page", "operation", "buffer"]
"""How a transport makes the call: one request and answer; the first page of a pager; a long-running
operation run to its end; or BufferTask's raw HTTP request (REST only)."""


@dataclasses.dataclass(frozen=True)
class BufferTaskRequest:
    """A BufferTask call. The official client has no message for it: it exists only over REST.

    Attributes:
        queue: the queue's full name.
        task_id: the caller's id, or None to let the service pick one.
        method: the HTTP method of the buffered request (the queue's own method override wins).
        headers: headers to carry to the task.
        body: the raw body, which becomes the task's body.
    """

    queue: str
    task_id: str | None
    method: str = "POST"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""


@dataclasses.dataclass(frozen=True)
class BatchCreateResult:
    """The outcome of a finished BatchCreateTasks operation.

    Attributes:
        tasks: the created tasks, in request order, skipping the failed requests.
        failures: index in the request -> ``(status code, message)`` for each request that failed.
    """

    tasks: list[tasks_v2.Task]
    failures: dict[int, tuple[int, str]]


def batch_result(tasks: Any, metadata: Any) -> BatchCreateResult:
    """A :class:`BatchCreateResult` from the operation's tasks and its ``BatchCreateTasksMetadata``."""
    failures: dict[int, tuple[int, str]] = {}
    if metadata is not None:
        failures = {int(i): (int(s.code), str(s.message)) for i, s in metadata.failed_requests.items()}
    return BatchCreateResult(tasks=[_wrap_task(t) for t in tasks], failures=failures)


def _wrap_task(task: Any) -> tasks_v2.Task:
    return task if isinstance(task, tasks_v2.Task) else _as_task(task)


_OPERATION_RESULT = tasks_v2.BatchCreateTasksResponse.pb()
_OPERATION_METADATA = tasks_v2.BatchCreateTasksMetadata.pb()


def _operation_result(operation: Any) -> BatchCreateResult:
    """A finished ``google.longrunning.Operation`` of BatchCreateTasks, unpacked."""
    response, metadata = _OPERATION_RESULT(), _OPERATION_METADATA()
    operation.response.Unpack(response)
    operation.metadata.Unpack(metadata)
    return batch_result(response.tasks, metadata)


_SEGMENT = r"[^/:]+"
_VARIABLE = re.compile(r"\{(?P<field>[a-z_.]+)(?:=(?P<pattern>[^}]+))?\}")


@dataclasses.dataclass(frozen=True)
class HttpRule:
    """One HTTP binding of an RPC, in the notation of ``google.api.http``.

    Attributes:
        verb: ``GET``, ``POST``, ``PATCH`` or ``DELETE``; ``*`` for any method (BufferTask).
        path: the path template, e.g. ``/v2/{parent=projects/*/locations/*}/queues``.
        body: the request field the JSON body fills: ``"*"`` for the whole request, a field name, or None.
    """

    verb: str
    path: str
    body: str | None = None

    def regex(self) -> re.Pattern[str]:
        """The path as a regular expression with one named group per template variable."""
        out, at = [], 0
        for match in _VARIABLE.finditer(self.path):
            out.append(re.escape(self.path[at : match.start()]))
            pattern = match.group("pattern") or "*"
            inner = re.escape(pattern).replace(r"\*", _SEGMENT)
            out.append(f"(?P<{match.group('field').replace('.', '__')}>{inner})")
            at = match.end()
        out.append(re.escape(self.path[at:]))
        return re.compile("".join(out))

    def fields(self) -> list[str]:
        """The request fields the path fills (``parent``, ``queue.name``...), in order."""
        return [match.group("field") for match in _VARIABLE.finditer(self.path)]


@dataclasses.dataclass(frozen=True, eq=False)
class Rpc(Generic[ReqT, RespT]):
    """One call of the Cloud Tasks API, typed by what crosses the seam.

    Attributes:
        name: the snake_case name: the official client's method, the engine's method, the fault key.
        method: the gRPC method (``CreateTask``); empty for REST-only calls.
        service: the gRPC service it belongs to.
        kind: how a transport makes the call (see :data:`Kind`).
        request: the request type at the seam (an official ``tasks_v2`` message, or
            :class:`BufferTaskRequest`).
        wire_request: the raw protobuf class the gRPC server parses.
        http: the REST bindings (the first one is the main one).
        encode: the seam's request as the raw protobuf the engine takes.
        decode: the engine's raw answer as the seam's response type.
    """

    name: str
    method: str
    service: str
    kind: Kind
    request: type[ReqT]
    wire_request: Any
    http: tuple[HttpRule, ...]
    encode: Callable[[ReqT], Any] = dataclasses.field(repr=False)
    decode: Callable[[Any], RespT] = dataclasses.field(repr=False)

    def __repr__(self) -> str:
        return f"Rpc({self.name})"


def _message(
    service: str,
    method: str,
    name: str,
    request: Any,
    response: Any,
    *http: HttpRule,
    kind: Kind = "unary",
) -> Rpc[Any, Any]:
    """A row whose request is an official proto-plus message (``tasks_v2``) or a raw protobuf class."""
    proto_plus = hasattr(request, "pb")
    wire = request.pb() if proto_plus else request
    encode: Callable[[Any], Any] = request.pb if proto_plus else _same
    decode: Callable[[Any], Any]
    if response is None:
        decode = _nothing
    elif kind == "operation":
        decode = _operation_result
    elif hasattr(response, "wrap"):
        decode = wrapper(response)
    else:
        decode = _same
    return Rpc(name, method, service, kind, request, wire, tuple(http), encode, decode)


def wrapper(message_class: type[M]) -> Callable[[Any], M]:
    """``message_class.wrap``, the same object in 40% of the time: a new instance holding the raw
    protobuf as ``_pb``. proto-plus's own goes through its ``__setattr__``, which only passes names
    starting with ``_`` on to ``object``; every create wraps twice (its request and the answer)."""
    new, set_attribute = object.__new__, object.__setattr__

    def wrap(raw: Any) -> M:
        message: M = new(message_class)
        set_attribute(message, "_pb", raw)
        return message

    return wrap


_as_task = wrapper(tasks_v2.Task)


def _same(message: Any) -> Any:
    return message


def _nothing(_: Any) -> None:
    return None


def _get(path: str) -> HttpRule:
    return HttpRule("GET", path)


def _post(path: str, body: str | None = "*") -> HttpRule:
    return HttpRule("POST", path, body)


def _patch(path: str, body: str) -> HttpRule:
    return HttpRule("PATCH", path, body)


def _delete(path: str) -> HttpRule:
    return HttpRule("DELETE", path)


_LOC = "projects/*/locations/*"
_Q = "projects/*/locations/*/queues/*"
_T = "projects/*/locations/*/queues/*/tasks/*"

# The calls the facade makes, typed for the seam.
LIST_QUEUES: Rpc[tasks_v2.ListQueuesRequest, tasks_v2.ListQueuesResponse] = _message(
    CLOUD_TASKS, "ListQueues", "list_queues", tasks_v2.ListQueuesRequest, tasks_v2.ListQueuesResponse,
    _get(f"/v2/{{parent={_LOC}}}/queues"), kind="page",
)  # fmt: skip
GET_QUEUE: Rpc[tasks_v2.GetQueueRequest, tasks_v2.Queue] = _message(
    CLOUD_TASKS, "GetQueue", "get_queue", tasks_v2.GetQueueRequest, tasks_v2.Queue, _get(f"/v2/{{name={_Q}}}")
)
CREATE_QUEUE: Rpc[tasks_v2.CreateQueueRequest, tasks_v2.Queue] = _message(
    CLOUD_TASKS, "CreateQueue", "create_queue", tasks_v2.CreateQueueRequest, tasks_v2.Queue,
    _post(f"/v2/{{parent={_LOC}}}/queues", "queue"),
)  # fmt: skip
UPDATE_QUEUE: Rpc[tasks_v2.UpdateQueueRequest, tasks_v2.Queue] = _message(
    CLOUD_TASKS, "UpdateQueue", "update_queue", tasks_v2.UpdateQueueRequest, tasks_v2.Queue,
    _patch(f"/v2/{{queue.name={_Q}}}", "queue"),
)  # fmt: skip
DELETE_QUEUE: Rpc[tasks_v2.DeleteQueueRequest, None] = _message(
    CLOUD_TASKS,
    "DeleteQueue",
    "delete_queue",
    tasks_v2.DeleteQueueRequest,
    None,
    _delete(f"/v2/{{name={_Q}}}"),
)
PURGE_QUEUE: Rpc[tasks_v2.PurgeQueueRequest, tasks_v2.Queue] = _message(
    CLOUD_TASKS,
    "PurgeQueue",
    "purge_queue",
    tasks_v2.PurgeQueueRequest,
    tasks_v2.Queue,
    _post(f"/v2/{{name={_Q}}}:purge"),
)
PAUSE_QUEUE: Rpc[tasks_v2.PauseQueueRequest, tasks_v2.Queue] = _message(
    CLOUD_TASKS,
    "PauseQueue",
    "pause_queue",
    tasks_v2.PauseQueueRequest,
    tasks_v2.Queue,
    _post(f"/v2/{{name={_Q}}}:pause"),
)
RESUME_QUEUE: Rpc[tasks_v2.ResumeQueueRequest, tasks_v2.Queue] = _message(
    CLOUD_TASKS, "ResumeQueue", "resume_queue", tasks_v2.ResumeQueueRequest, tasks_v2.Queue,
    _post(f"/v2/{{name={_Q}}}:resume"),
)  # fmt: skip
LIST_TASKS: Rpc[tasks_v2.ListTasksRequest, tasks_v2.ListTasksResponse] = _message(
    CLOUD_TASKS, "ListTasks", "list_tasks", tasks_v2.ListTasksRequest, tasks_v2.ListTasksResponse,
    _get(f"/v2/{{parent={_Q}}}/tasks"), kind="page",
)  # fmt: skip
GET_TASK: Rpc[tasks_v2.GetTaskRequest, tasks_v2.Task] = _message(
    CLOUD_TASKS, "GetTask", "get_task", tasks_v2.GetTaskRequest, tasks_v2.Task, _get(f"/v2/{{name={_T}}}")
)
CREATE_TASK: Rpc[tasks_v2.CreateTaskRequest, tasks_v2.Task] = _message(
    CLOUD_TASKS,
    "CreateTask",
    "create_task",
    tasks_v2.CreateTaskRequest,
    tasks_v2.Task,
    _post(f"/v2/{{parent={_Q}}}/tasks"),
)
BATCH_CREATE_TASKS: Rpc[tasks_v2.BatchCreateTasksRequest, BatchCreateResult] = _message(
    CLOUD_TASKS, "BatchCreateTasks", "batch_create_tasks", tasks_v2.BatchCreateTasksRequest,
    operations_pb2.Operation, _post(f"/v2/{{parent={_Q}}}/tasks:batchCreate"), kind="operation",
)  # fmt: skip
DELETE_TASK: Rpc[tasks_v2.DeleteTaskRequest, None] = _message(
    CLOUD_TASKS, "DeleteTask", "delete_task", tasks_v2.DeleteTaskRequest, None, _delete(f"/v2/{{name={_T}}}")
)
RUN_TASK: Rpc[tasks_v2.RunTaskRequest, tasks_v2.Task] = _message(
    CLOUD_TASKS,
    "RunTask",
    "run_task",
    tasks_v2.RunTaskRequest,
    tasks_v2.Task,
    _post(f"/v2/{{name={_T}}}:run"),
)
BUFFER_TASK: Rpc[BufferTaskRequest, tasks_v2.Task] = Rpc(
    "buffer_task",
    "",  # REST only: there is no gRPC method and no official client method
    CLOUD_TASKS,
    "buffer",
    BufferTaskRequest,
    None,
    (  # any method: the buffered request's own method is the task's (unless the queue sets one)
        HttpRule("*", f"/v2/{{queue={_Q}}}/tasks/{{task_id=*}}:buffer"),
        HttpRule("*", f"/v2/{{queue={_Q}}}/tasks:buffer"),
    ),
    _same,
    tasks_v2.Task.wrap,
)

# The rest of what the official clients can call; the emulator serves these too.
_MORE: list[Rpc[Any, Any]] = [
    _message(
        CLOUD_TASKS, "GetIamPolicy", "get_iam_policy", iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy,
        _post(f"/v2/{{resource={_Q}}}:getIamPolicy"),
    ),
    _message(
        CLOUD_TASKS, "SetIamPolicy", "set_iam_policy", iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy,
        _post(f"/v2/{{resource={_Q}}}:setIamPolicy"),
    ),
    _message(
        CLOUD_TASKS, "TestIamPermissions", "test_iam_permissions", iam_policy_pb2.TestIamPermissionsRequest,
        iam_policy_pb2.TestIamPermissionsResponse, _post(f"/v2/{{resource={_Q}}}:testIamPermissions"),
    ),
    _message(
        CLOUD_TASKS, "BatchDeleteTasks", "batch_delete_tasks", tasks_v2.BatchDeleteTasksRequest,
        operations_pb2.Operation, _post(f"/v2/{{parent={_Q}}}/tasks:batchDelete"),
    ),
    _message(
        CLOUD_TASKS, "GetCmekConfig", "get_cmek_config", tasks_v2.GetCmekConfigRequest, tasks_v2.CmekConfig,
        _get(f"/v2/{{name={_LOC}/cmekConfig}}"),
    ),
    _message(
        CLOUD_TASKS, "UpdateCmekConfig", "update_cmek_config", tasks_v2.UpdateCmekConfigRequest, tasks_v2.CmekConfig,
        _patch(f"/v2/{{cmek_config.name={_LOC}/cmekConfig}}", "cmek_config"),
    ),
    _message(
        OPERATIONS, "GetOperation", "get_operation", operations_pb2.GetOperationRequest,
        operations_pb2.Operation, _get(f"/v2/{{name={_LOC}/operations/*}}"),
    ),
    _message(
        OPERATIONS, "ListOperations", "list_operations", operations_pb2.ListOperationsRequest,
        operations_pb2.ListOperationsResponse,
    ),
    _message(
        OPERATIONS, "DeleteOperation", "delete_operation", operations_pb2.DeleteOperationRequest,
        empty_pb2.Empty, _delete(f"/v2/{{name={_LOC}/operations/*}}"),
    ),
    _message(
        OPERATIONS, "CancelOperation", "cancel_operation", operations_pb2.CancelOperationRequest,
        empty_pb2.Empty, _post(f"/v2/{{name={_LOC}/operations/*}}:cancel"),
    ),
    _message(
        OPERATIONS, "WaitOperation", "wait_operation", operations_pb2.WaitOperationRequest,
        operations_pb2.Operation,
    ),
    _message(
        LOCATIONS, "ListLocations", "list_locations", locations_pb2.ListLocationsRequest,
        locations_pb2.ListLocationsResponse, _get("/v2/{name=projects/*}/locations"),
    ),
    _message(
        LOCATIONS, "GetLocation", "get_location", locations_pb2.GetLocationRequest, locations_pb2.Location,
        _get(f"/v2/{{name={_LOC}}}"),
    ),
]  # fmt: skip

_SEAM: list[Rpc[Any, Any]] = [
    LIST_QUEUES,
    GET_QUEUE,
    CREATE_QUEUE,
    UPDATE_QUEUE,
    DELETE_QUEUE,
    PURGE_QUEUE,
    PAUSE_QUEUE,
    RESUME_QUEUE,
    LIST_TASKS,
    GET_TASK,
    CREATE_TASK,
    BATCH_CREATE_TASKS,
    DELETE_TASK,
    RUN_TASK,
    BUFFER_TASK,
]

RPCS: dict[str, Rpc[Any, Any]] = {rpc.name: rpc for rpc in _SEAM + _MORE}
"""Every call, by its snake_case name."""
