"""The calls around tasks and queues: IAM policies, CMEK config, long-running operations, locations.

Kept simply, as the emulator needs them to answer every call the official clients make; a part of the
:class:`~cloudtasks_kit.engine.engine.Engine`, which hands these RPCs here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as core
from google.cloud import tasks_v2
from google.cloud.location import locations_pb2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_pb2

from ..names import location_of_queue, parse_location_name, project_of
from .messages import IAM_ETAG_MISMATCH, NOT_FOUND

__all__ = ["Admin"]

DEFAULT_LOCATIONS = ("us-central1", "us-east1", "europe-west1", "asia-northeast1")
OPERATION_RETENTION = 3600.0
"""Seconds a finished operation stays readable with GetOperation (the service does not document it)."""
MAX_OPERATIONS = 1000
"""Finished operations kept at most, newest first: each holds its whole response, and the batch calls
answer with the finished operation at once, so GetOperation long after is rare."""

_PB_CMEK = tasks_v2.CmekConfig.pb()
_FIRST_ETAG = b"\x00"
"""The etag of a queue's policy before anyone set one (the policy GetIamPolicy returns then)."""


class Admin:
    """IAM policies per queue (every permission granted), CMEK config, operations and locations.

    Args:
        now: the engine's clock.
        queue_exists: raises NOT_FOUND for a queue that does not exist.
    """

    def __init__(self, now: Callable[[], float], queue_exists: Callable[[str], object]) -> None:
        self._now = now
        self._queue_exists = queue_exists
        self._policies: dict[str, Any] = {}
        self._cmek: dict[str, Any] = {}
        self._operations: dict[str, tuple[float, Any]] = {}

    # Long-running operations: the batch calls finish at once and are kept for GetOperation a while.

    def operation(self, queue_name: str, response: Any, metadata: Any) -> Any:
        """A finished operation holding ``response`` and ``metadata``, kept for a while."""
        name = f"{location_of_queue(queue_name)}/operations/{uuid.uuid4().hex}"
        operation = operations_pb2.Operation(name=name, done=True)
        operation.response.Pack(response)
        operation.metadata.Pack(metadata)
        now = self._now()
        self._forget_operations(now)
        self._operations[name] = (now + OPERATION_RETENTION, operation)
        return operation

    def _forget_operations(self, now: float) -> None:
        # Insertion order is expiry order: drop from the front while expired or over the count.
        operations = self._operations
        while operations:
            oldest = next(iter(operations))
            if operations[oldest][0] > now and len(operations) <= MAX_OPERATIONS:
                return
            del operations[oldest]

    def get_operation(self, request: Any) -> Any:
        self._forget_operations(self._now())
        kept = self._operations.get(request.name)
        if kept is None:
            raise core.NotFound(NOT_FOUND)
        return kept[1]

    def wait_operation(self, request: Any) -> Any:
        return self.get_operation(request)

    def list_operations(self, request: Any) -> Any:
        self._forget_operations(self._now())
        response = operations_pb2.ListOperationsResponse()
        prefix = request.name.rstrip("/") + "/"
        response.operations.extend(
            op for name, (_, op) in self._operations.items() if name.startswith(prefix)
        )
        return response

    def delete_operation(self, request: Any) -> None:
        self.get_operation(request)
        del self._operations[request.name]

    def cancel_operation(self, request: Any) -> None:
        self.get_operation(request)  # already done: nothing to cancel

    # IAM.

    def get_iam_policy(self, request: Any) -> Any:
        self._queue_exists(request.resource)
        return self._policies.get(request.resource) or policy_pb2.Policy(version=1, etag=_FIRST_ETAG)

    def set_iam_policy(self, request: Any) -> Any:
        self._queue_exists(request.resource)
        # The etag is for optimistic concurrency (IAM Policy reference): a write based on a policy that
        # has changed since it was read is refused with ABORTED; an empty etag writes unconditionally.
        current = self._policies.get(request.resource)
        current_etag = current.etag if current is not None else _FIRST_ETAG
        if request.policy.etag and request.policy.etag != current_etag:
            raise core.Aborted(IAM_ETAG_MISMATCH)
        policy = policy_pb2.Policy()
        policy.CopyFrom(request.policy)
        policy.etag = uuid.uuid4().bytes[:8]
        self._policies[request.resource] = policy
        return policy

    def test_iam_permissions(self, request: Any) -> Any:
        # "If the resource does not exist, this will return an empty set of permissions, not a NOT_FOUND
        # error" (TestIamPermissions reference). A malformed name is still INVALID_ARGUMENT.
        try:
            self._queue_exists(request.resource)
        except core.NotFound:
            return iam_policy_pb2.TestIamPermissionsResponse()
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=list(request.permissions))

    # CMEK config and locations.

    def get_cmek_config(self, request: Any) -> Any:
        config = self._cmek.get(request.name)
        return config if config is not None else _PB_CMEK(name=request.name)

    def update_cmek_config(self, request: Any) -> Any:
        config = _PB_CMEK()
        config.CopyFrom(request.cmek_config)
        self._cmek[config.name] = config
        return config

    def list_locations(self, request: Any) -> Any:
        project = project_of(request.name, default="local-project")
        response = locations_pb2.ListLocationsResponse()
        for location in DEFAULT_LOCATIONS:
            response.locations.add(name=f"projects/{project}/locations/{location}", location_id=location)
        return response

    def get_location(self, request: Any) -> Any:
        _, location = parse_location_name(request.name, field="name")
        return locations_pb2.Location(name=request.name, location_id=location, display_name=location)
