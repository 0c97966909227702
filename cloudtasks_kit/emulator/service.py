"""The emulator's RPC layer, shared by its gRPC and REST servers: one table of RPCs, one way to call them.

Each RPC takes and returns raw protobufs. Task and queue RPCs go to the engine; the rest of what the
official client can call (IAM policies, CMEK config, long-running operations, locations) is kept here,
simply. Fault injection applies to every RPC, as in the fake.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as core
from google.cloud import tasks_v2
from google.cloud.location import locations_pb2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2

from ..engine.engine import NOT_FOUND, Engine
from ..engine.faults import Faults
from ..errors import ValidationError
from ..names import parse_location_name, parse_queue_name

__all__ = ["RPCS", "Rpc", "Service"]

CLOUD_TASKS = "google.cloud.tasks.v2.CloudTasks"
OPERATIONS = "google.longrunning.Operations"
LOCATIONS = "google.cloud.location.Locations"


@dataclasses.dataclass(frozen=True)
class Rpc:
    service: str
    method: str  # the gRPC method name, e.g. "CreateTask"
    name: str  # the snake_case name, e.g. "create_task"
    request: Any  # protobuf class
    response: Any  # protobuf class


def _t(message: Any) -> Any:
    return message.pb()


def _rpc(service: str, method: str, name: str, request: Any, response: Any) -> Rpc:
    return Rpc(service, method, name, request, response)


RPCS: dict[str, Rpc] = {
    rpc.name: rpc
    for rpc in [
        _rpc(
            CLOUD_TASKS,
            "ListQueues",
            "list_queues",
            _t(tasks_v2.ListQueuesRequest),
            _t(tasks_v2.ListQueuesResponse),
        ),
        _rpc(CLOUD_TASKS, "GetQueue", "get_queue", _t(tasks_v2.GetQueueRequest), _t(tasks_v2.Queue)),
        _rpc(CLOUD_TASKS, "CreateQueue", "create_queue", _t(tasks_v2.CreateQueueRequest), _t(tasks_v2.Queue)),
        _rpc(CLOUD_TASKS, "UpdateQueue", "update_queue", _t(tasks_v2.UpdateQueueRequest), _t(tasks_v2.Queue)),
        _rpc(CLOUD_TASKS, "DeleteQueue", "delete_queue", _t(tasks_v2.DeleteQueueRequest), empty_pb2.Empty),
        _rpc(CLOUD_TASKS, "PurgeQueue", "purge_queue", _t(tasks_v2.PurgeQueueRequest), _t(tasks_v2.Queue)),
        _rpc(CLOUD_TASKS, "PauseQueue", "pause_queue", _t(tasks_v2.PauseQueueRequest), _t(tasks_v2.Queue)),
        _rpc(CLOUD_TASKS, "ResumeQueue", "resume_queue", _t(tasks_v2.ResumeQueueRequest), _t(tasks_v2.Queue)),
        _rpc(
            CLOUD_TASKS,
            "GetIamPolicy",
            "get_iam_policy",
            iam_policy_pb2.GetIamPolicyRequest,
            policy_pb2.Policy,
        ),
        _rpc(
            CLOUD_TASKS,
            "SetIamPolicy",
            "set_iam_policy",
            iam_policy_pb2.SetIamPolicyRequest,
            policy_pb2.Policy,
        ),
        _rpc(
            CLOUD_TASKS,
            "TestIamPermissions",
            "test_iam_permissions",
            iam_policy_pb2.TestIamPermissionsRequest,
            iam_policy_pb2.TestIamPermissionsResponse,
        ),
        _rpc(
            CLOUD_TASKS,
            "ListTasks",
            "list_tasks",
            _t(tasks_v2.ListTasksRequest),
            _t(tasks_v2.ListTasksResponse),
        ),
        _rpc(CLOUD_TASKS, "GetTask", "get_task", _t(tasks_v2.GetTaskRequest), _t(tasks_v2.Task)),
        _rpc(CLOUD_TASKS, "CreateTask", "create_task", _t(tasks_v2.CreateTaskRequest), _t(tasks_v2.Task)),
        _rpc(
            CLOUD_TASKS,
            "BatchCreateTasks",
            "batch_create_tasks",
            _t(tasks_v2.BatchCreateTasksRequest),
            operations_pb2.Operation,
        ),
        _rpc(CLOUD_TASKS, "DeleteTask", "delete_task", _t(tasks_v2.DeleteTaskRequest), empty_pb2.Empty),
        _rpc(
            CLOUD_TASKS,
            "BatchDeleteTasks",
            "batch_delete_tasks",
            _t(tasks_v2.BatchDeleteTasksRequest),
            operations_pb2.Operation,
        ),
        _rpc(CLOUD_TASKS, "RunTask", "run_task", _t(tasks_v2.RunTaskRequest), _t(tasks_v2.Task)),
        _rpc(
            CLOUD_TASKS,
            "GetCmekConfig",
            "get_cmek_config",
            _t(tasks_v2.GetCmekConfigRequest),
            _t(tasks_v2.CmekConfig),
        ),
        _rpc(
            CLOUD_TASKS,
            "UpdateCmekConfig",
            "update_cmek_config",
            _t(tasks_v2.UpdateCmekConfigRequest),
            _t(tasks_v2.CmekConfig),
        ),
        _rpc(
            OPERATIONS,
            "GetOperation",
            "get_operation",
            operations_pb2.GetOperationRequest,
            operations_pb2.Operation,
        ),
        _rpc(
            OPERATIONS,
            "ListOperations",
            "list_operations",
            operations_pb2.ListOperationsRequest,
            operations_pb2.ListOperationsResponse,
        ),
        _rpc(
            OPERATIONS,
            "DeleteOperation",
            "delete_operation",
            operations_pb2.DeleteOperationRequest,
            empty_pb2.Empty,
        ),
        _rpc(
            OPERATIONS,
            "CancelOperation",
            "cancel_operation",
            operations_pb2.CancelOperationRequest,
            empty_pb2.Empty,
        ),
        _rpc(
            OPERATIONS,
            "WaitOperation",
            "wait_operation",
            operations_pb2.WaitOperationRequest,
            operations_pb2.Operation,
        ),
        _rpc(
            LOCATIONS,
            "ListLocations",
            "list_locations",
            locations_pb2.ListLocationsRequest,
            locations_pb2.ListLocationsResponse,
        ),
        _rpc(
            LOCATIONS, "GetLocation", "get_location", locations_pb2.GetLocationRequest, locations_pb2.Location
        ),
    ]
}

DEFAULT_LOCATIONS = ("us-central1", "us-east1", "europe-west1", "asia-northeast1")


class Service:
    """The emulator's RPCs over one engine. Not thread-safe: the servers call it from one event loop."""

    def __init__(self, engine: Engine, faults: Faults | None = None) -> None:
        self.engine = engine
        self.faults = faults or Faults()
        self._policies: dict[str, Any] = {}
        self._cmek: dict[str, Any] = {}
        self._operations: dict[str, Any] = {}

    def call(self, name: str, request: Any) -> Any:
        """Run one RPC, with fault injection; raises ``google.api_core`` exceptions as the service answers."""
        handler: Callable[[Any], Any] = getattr(self, "_" + name, None) or getattr(self.engine, name)

        def answer() -> Any:
            try:
                return handler(request)
            except ValidationError as exc:
                raise core.InvalidArgument(str(exc)) from None

        response = self.faults.around(name, answer)
        return empty_pb2.Empty() if response is None else response

    def buffer_task(
        self, queue: str, task_id: str | None, method: str, headers: dict[str, str], body: bytes
    ) -> Any:
        return self.faults.around(
            "buffer_task", self.engine.buffer_task, queue, task_id, method, headers, body
        )

    # Long-running operations: the batch calls finish at once and are kept for GetOperation.

    def _batch_create_tasks(self, request: Any) -> Any:
        response, metadata = self.engine.batch_create_tasks(request)
        return self._operation(request.parent, response, metadata)

    def _batch_delete_tasks(self, request: Any) -> Any:
        metadata = self.engine.batch_delete_tasks(request)
        return self._operation(request.parent, empty_pb2.Empty(), metadata)

    def _operation(self, queue_name: str, response: Any, metadata: Any) -> Any:
        parsed = parse_queue_name(queue_name)
        name = f"{parsed.parent}/operations/{uuid.uuid4().hex}"
        operation = operations_pb2.Operation(name=name, done=True)
        operation.response.Pack(response)
        operation.metadata.Pack(metadata)
        self._operations[name] = operation
        return operation

    def _get_operation(self, request: Any) -> Any:
        operation = self._operations.get(request.name)
        if operation is None:
            raise core.NotFound(NOT_FOUND)
        return operation

    def _wait_operation(self, request: Any) -> Any:
        return self._get_operation(request)

    def _list_operations(self, request: Any) -> Any:
        response = operations_pb2.ListOperationsResponse()
        prefix = request.name.rstrip("/") + "/"
        response.operations.extend(op for name, op in self._operations.items() if name.startswith(prefix))
        return response

    def _delete_operation(self, request: Any) -> None:
        self._get_operation(request)
        del self._operations[request.name]

    def _cancel_operation(self, request: Any) -> None:
        self._get_operation(request)  # already done: nothing to cancel

    # IAM: a policy per queue, every permission granted.

    def _get_iam_policy(self, request: Any) -> Any:
        self._queue_exists(request.resource)
        return self._policies.get(request.resource) or policy_pb2.Policy(version=1, etag=b"\x00")

    def _set_iam_policy(self, request: Any) -> Any:
        self._queue_exists(request.resource)
        policy = policy_pb2.Policy()
        policy.CopyFrom(request.policy)
        policy.etag = uuid.uuid4().bytes[:8]
        self._policies[request.resource] = policy
        return policy

    def _test_iam_permissions(self, request: Any) -> Any:
        self._queue_exists(request.resource)
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=list(request.permissions))

    def _queue_exists(self, name: str) -> None:
        self.engine.get_queue(tasks_v2.GetQueueRequest.pb()(name=name))

    # CMEK config and locations.

    def _get_cmek_config(self, request: Any) -> Any:
        config = self._cmek.get(request.name)
        return config if config is not None else tasks_v2.CmekConfig.pb()(name=request.name)

    def _update_cmek_config(self, request: Any) -> Any:
        config = tasks_v2.CmekConfig.pb()()
        config.CopyFrom(request.cmek_config)
        self._cmek[config.name] = config
        return config

    def _list_locations(self, request: Any) -> Any:
        project = request.name.split("/")[1] if request.name.startswith("projects/") else "local-project"
        response = locations_pb2.ListLocationsResponse()
        for location in DEFAULT_LOCATIONS:
            response.locations.add(name=f"projects/{project}/locations/{location}", location_id=location)
        return response

    def _get_location(self, request: Any) -> Any:
        _, location = parse_location_name(request.name, field="name")
        return locations_pb2.Location(name=request.name, location_id=location, display_name=location)
