"""What the sync and async facades share: a client's settings, a queue handle's state, and the plans and
operations their methods run. :class:`~cloudtasks_kit.CloudTasks` and
:class:`~cloudtasks_kit.AsyncCloudTasks` (and their handles) only add how they run them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from . import _operations as ops
from . import rules, tracing
from ._runner import Op, Plan
from .bulk import Bulk, Progress
from .errors import UsageError
from .names import QueueName, location_path
from .queues import Queue
from .retry import RetryPolicy
from .tasks import Task, TaskSpec
from .transports.base import AsyncTransport, Transport

EMULATOR_HOST_ENV = "CLOUDTASKS_EMULATOR_HOST"
EMULATOR_REST_HOST_ENV = "CLOUDTASKS_EMULATOR_REST_HOST"

TransportT = TypeVar("TransportT", bound="Transport | AsyncTransport")
ClientT = TypeVar("ClientT", bound="ClientBase[Any]")
T = TypeVar("T")


def resolve_location(project: str | None, location: str | None) -> tuple[str, str]:
    """Project and location from the arguments, else ``GOOGLE_CLOUD_PROJECT`` / ``CLOUDTASKS_LOCATION``."""
    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUDSDK_CORE_PROJECT")
    location = location or os.environ.get("CLOUDTASKS_LOCATION")
    if not project:
        raise UsageError("CloudTasks needs a project: pass project=... or set GOOGLE_CLOUD_PROJECT")
    if not location:
        raise UsageError(
            "CloudTasks needs a location (e.g. 'us-central1'): pass location=... or set CLOUDTASKS_LOCATION"
        )
    return rules.check_project_id(project), rules.check_location_id(location)


def emulator_addresses(emulator_host: str | None) -> tuple[str | None, str | None]:
    """The emulator's gRPC and REST addresses, from the argument or the environment."""
    host = emulator_host or os.environ.get(EMULATOR_HOST_ENV) or None
    rest = os.environ.get(EMULATOR_REST_HOST_ENV) or None
    return host, rest


class ClientBase(Generic[TransportT]):
    """A project and location, the transport to them, and how creates are checked and retried."""

    def __init__(
        self,
        project: str | None,
        location: str | None,
        make_transport: Callable[[], TransportT],
        limits: rules.Limits,
        retry_policy: RetryPolicy | None,
    ) -> None:
        self.project, self.location = resolve_location(project, location)  # before any credentials
        self.transport: TransportT = make_transport()
        self.limits = limits
        self.retry_policy = retry_policy
        """How creates are retried (tasks with ids only, by default); None: never."""

    @property
    def parent(self) -> str:
        """``projects/P/locations/L``."""
        return location_path(self.project, self.location)

    def _queue_name(self, queue_id: str) -> QueueName:
        return QueueName(self.project, self.location, rules.check_queue_id(queue_id))

    def __repr__(self) -> str:
        kind = type(self.transport).__name__
        return (
            f"{type(self).__name__}(project={self.project!r}, location={self.location!r}, transport={kind})"
        )


class QueueBase(Generic[ClientT]):
    """One queue of a client: its names, what the handle has seen of it, and the plans of its calls."""

    def __init__(self, client: ClientT, name: QueueName) -> None:
        self.client = client
        self.name = name.path
        self.id = name.queue
        self.known: Queue | None = None
        """The queue as last seen by this handle (create, ensure, get...), or None."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def _seen(self, result: T) -> T:
        if isinstance(result, Queue):
            self.known = result
        return result

    def _create_plan(
        self, url: str | TaskSpec, options: Mapping[str, Any], retry_policy: RetryPolicy | None
    ) -> Plan[Task]:
        client = self.client
        return ops.plan_create(
            self.name,
            ops.as_spec(url, options),
            now=client.transport.now(),
            limits=client.limits,
            policy=retry_policy or client.retry_policy,
        )

    def _bulk(
        self,
        specs: Iterable[TaskSpec | Mapping[str, Any]],
        retry_policy: RetryPolicy | None,
        on_progress: Progress | None,
    ) -> Bulk:
        client = self.client
        return Bulk(
            self.name,
            specs,
            now=client.transport.now(),
            limits=client.limits,
            policy=retry_policy or client.retry_policy,
            on_progress=on_progress,
        )

    def _buffer(
        self,
        body: bytes | None,
        *,
        text: str | None,
        json: Any,
        task_id: str | None,
        method: str,
        headers: Mapping[str, str] | None,
    ) -> Op[Task]:
        op = ops.buffer_task(
            self.name,
            self.known,
            body=body,
            text=text,
            json=json,
            task_id=task_id,
            method=method,
            headers=headers,
        )
        return tracing.traced_buffer(op, self.name)  # the op itself unless OpenTelemetry is on
