"""What the sync and async facades share: a client's settings, a queue handle's state, and the plans and
operations their methods run. :class:`~cloudtasks_kit.CloudTasks` and
:class:`~cloudtasks_kit.AsyncCloudTasks` (and their handles) only add how they run them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import _lazy, errors, rules, tracing
from . import _operations as ops
from ._emulator_env import (
    EMULATOR_HOST_ENV,
    EMULATOR_LOCATION,
    EMULATOR_PROJECT,
    EMULATOR_REST_HOST_ENV,
    emulator_addresses,
)
from ._runner import Op, Plan
from .errors import UsageError
from .names import QueueName, location_path
from .retry import RetryPolicy
from .transports.base import AsyncTransport, Transport

if TYPE_CHECKING:
    from . import bulk, queues
    from .appengine import AppEngineTask
    from .bulk import Bulk, Progress
    from .queues import Queue
    from .tasks import Task, TaskSpec
else:  # the models load on first use: see _lazy
    bulk = _lazy.module("cloudtasks_kit.bulk")
    queues = _lazy.module("cloudtasks_kit.queues")

TransportT = TypeVar("TransportT", bound="Transport | AsyncTransport")
ClientT = TypeVar("ClientT", bound="ClientBase[Any]")
T = TypeVar("T")

__all__ = [
    "EMULATOR_HOST_ENV",
    "EMULATOR_LOCATION",
    "EMULATOR_PROJECT",
    "EMULATOR_REST_HOST_ENV",
    "ClientBase",
    "QueueBase",
    "emulator_addresses",
    "resolve_location",
]


def resolve_location(project: str | None, location: str | None, *, emulator: bool = False) -> tuple[str, str]:
    """Project and location: the arguments, else ``GOOGLE_CLOUD_PROJECT`` / ``CLOUDTASKS_LOCATION``, else
    (with the emulator only) :data:`EMULATOR_PROJECT` / :data:`EMULATOR_LOCATION`."""
    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUDSDK_CORE_PROJECT")
    location = location or os.environ.get("CLOUDTASKS_LOCATION")
    if emulator:
        project, location = project or EMULATOR_PROJECT, location or EMULATOR_LOCATION
    if not project:
        raise UsageError(
            "CloudTasks needs a project: pass project=... or set GOOGLE_CLOUD_PROJECT "
            f"(or set {EMULATOR_HOST_ENV} to use the emulator, whose default project is {EMULATOR_PROJECT!r})"
        )
    if not location:
        raise UsageError(
            "CloudTasks needs a location (e.g. 'us-central1'): pass location=... or set CLOUDTASKS_LOCATION"
        )
    return rules.check_project_id(project), rules.check_location_id(location)


class ClientBase(Generic[TransportT]):
    """A project and location, the transport to them, and how creates are checked and retried.

    Nothing is looked up when a client is made: the project and location (from the arguments, the
    environment, or the emulator's defaults) are resolved when first needed, and the default transport,
    with its credentials, is made on the first call. So a module may make its client at import time on a
    machine with no Google credentials, and a test may bind another one before any call is made.

    Args:
        project, location: as given (checked now, if given).
        transport: a transport instance, or None/a name for the default one, made by ``make_transport``.
        emulator_host: the emulator's gRPC address, else ``CLOUDTASKS_EMULATOR_HOST`` (read on first use).
        make_transport: makes the default transport from the emulator's gRPC and REST addresses (None
            for each when not set); called once, on the first call.
        uses_emulator: whether the default transport talks to the emulator, given its two addresses.
        kind: the default transport's class name, for the repr before it is made.
    """

    def __init__(
        self,
        project: str | None,
        location: str | None,
        *,
        transport: TransportT | None,
        emulator_host: str | None,
        make_transport: Callable[[str | None, str | None], TransportT],
        uses_emulator: Callable[[str | None, str | None], bool],
        kind: str,
        limits: rules.Limits,
        retry_policy: RetryPolicy | None,
    ) -> None:
        # Values given here are checked at once (no I/O); only what is missing is looked up, later.
        self._project_arg = rules.check_project_id(project) if project else None
        self._location_arg = rules.check_location_id(location) if location else None
        self._emulator_host = emulator_host
        self._make_transport = make_transport
        self._uses_emulator = uses_emulator
        self._kind = type(transport).__name__ if transport is not None else kind
        self._transport: TransportT | None = transport
        self._given = transport is not None
        self._resolved: tuple[str, str] | None = None
        self._lock = threading.Lock()  # two threads' first calls make one transport
        self.limits = limits
        self.retry_policy = retry_policy
        """How creates are retried (tasks with ids only, by default); None: never."""

    # Resolved on first use.

    @property
    def project(self) -> str:
        """The project id (resolved on first access; :class:`UsageError` if there is none)."""
        return self._location()[0]

    @property
    def location(self) -> str:
        """The location id (resolved on first access; :class:`UsageError` if there is none)."""
        return self._location()[1]

    @property
    def parent(self) -> str:
        """``projects/P/locations/L``."""
        return location_path(self.project, self.location)

    @property
    def transport(self) -> TransportT:
        """The transport; the default one is made on first access (which is when credentials are looked up)."""
        transport = self._transport
        if transport is None:
            with self._lock:
                transport = self._transport
                if transport is None:
                    transport = self._transport = self._new_transport()
        return transport

    def _made_transport(self) -> TransportT | None:
        """The transport if it exists yet (closing a client that never called needs to make none)."""
        return self._transport

    def _talks_to_emulator(self) -> bool:
        return not self._given and self._uses_emulator(*self._addresses())

    def _addresses(self) -> tuple[str | None, str | None]:
        return emulator_addresses(self._emulator_host)

    def _location(self) -> tuple[str, str]:
        if self._resolved is None:
            self._resolved = resolve_location(
                self._project_arg, self._location_arg, emulator=self._talks_to_emulator()
            )
        return self._resolved

    def _new_transport(self) -> TransportT:
        self._location()  # every call needs the project: say so before any credentials are looked up
        host, rest = self._addresses()
        try:
            return self._make_transport(host, rest)
        except Exception as exc:
            # The official client looks up application default credentials when it is made: their
            # absence is the kit's Unauthenticated, saying what to do, as it is on any later call.
            mapped = errors.from_exception(exc)
            if isinstance(mapped, errors.Unauthenticated):
                raise mapped from exc
            raise

    def _queue_id(self, queue_id: str) -> str:
        """The id a handle on ``queue_id`` uses, checked (a hook: the live tests prefix their queues)."""
        return rules.check_queue_id(queue_id)

    def _queue_name(self, queue_id: str) -> QueueName:
        return QueueName(self.project, self.location, self._queue_id(queue_id))

    def __repr__(self) -> str:
        try:
            project, location = self._location()
        except UsageError:  # a repr never raises: say what is missing instead
            project = self._project_arg or "<unset>"
            location = self._location_arg or "<unset>"
        kind = type(self._transport).__name__ if self._transport is not None else self._kind
        return f"{type(self).__name__}(project={project!r}, location={location!r}, transport={kind})"


class QueueBase(Generic[ClientT]):
    """One queue of a client: its names, what the handle has seen of it, and the plans of its calls."""

    def __init__(self, client: ClientT, queue_id: str) -> None:
        self.client = client
        self.id = client._queue_id(queue_id)
        self._name: str | None = None
        self.known: Queue | None = None
        """The queue as last seen by this handle (create, ensure, get...), or None."""

    @property
    def name(self) -> str:
        """``projects/P/locations/L/queues/Q`` (the client's project is resolved on first access)."""
        if self._name is None:
            self._name = QueueName(self.client.project, self.client.location, self.id).path
        return self._name

    def __repr__(self) -> str:
        try:
            return f"{type(self).__name__}({self.name!r})"
        except UsageError:  # no project yet: a repr never raises
            return f"{type(self).__name__}({self.id!r}, project unresolved)"

    def _seen(self, result: T) -> T:
        if isinstance(result, queues.Queue):
            self.known = result
        return result

    def _create_plan(
        self,
        url: str | TaskSpec | AppEngineTask,
        options: Mapping[str, Any],
        retry_policy: RetryPolicy | None,
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
        specs: Iterable[TaskSpec | AppEngineTask | Mapping[str, Any]],
        retry_policy: RetryPolicy | None,
        on_progress: Progress | None,
    ) -> Bulk:
        client = self.client
        return bulk.Bulk(
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
