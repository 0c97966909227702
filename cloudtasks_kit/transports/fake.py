"""The in-process fake backend: the engine behind the transport seam, on virtual time.

    >>> fake = FakeTransport()
    >>> tasks = fake.client()                      # CloudTasks(project="test-project", ...) on the fake
    >>> _ = tasks.queue("emails").create()
    >>> _ = tasks.queue("emails").create_task("https://worker.test/send", json={"to": "a@b.c"})
    >>> fake.deliver_to(lambda dispatch: 200)
    >>> [d.status for d in fake.run_until_idle()]
    [200]

It answers like the service (strict: queues must exist, unless ``auto_create_queues=True``), raises what
the official gRPC client raises, and still encodes every request and decodes every response.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from google.cloud import tasks_v2

from .. import rules
from ..engine.clock import ManualClock
from ..engine.delivery import Dispatch
from ..engine.driver import Delivery, VirtualDriver
from ..engine.engine import Engine
from ..engine.faults import Faults
from ..engine.targets import ASGITarget, CallableTarget, HTTPTarget, Target, TargetResponse, WSGITarget
from ..engine.tokens import TokenSigner
from ..queues import Queue
from ..tasks import Task
from .base import BatchCreateResult, BufferTaskRequest, Transport

if TYPE_CHECKING:
    from ..aio import AsyncCloudTasks
    from ..client import CloudTasks

__all__ = ["FakeTransport"]

_TARGET_TYPES = (WSGITarget, ASGITarget, CallableTarget, HTTPTarget)


def _rpc(name: str, request_type: Any, response_type: Any) -> Any:
    def call(self: FakeTransport, request: Any) -> Any:
        response = self._call(name, request_type.pb(request))
        return None if response_type is None else response_type.wrap(response)

    call.__name__ = name
    return call


class FakeTransport(Transport):
    """Cloud Tasks in process, on a :class:`~cloudtasks_kit.engine.clock.ManualClock`.

    Args:
        clock: the virtual clock (a new one at the wall clock's now by default).
        auto_create_queues: create a queue with default settings on its first task, for test convenience
            (the service answers NOT_FOUND; so does the fake unless this is set).
        limits: the configurable service limits.
        signer: the key that signs OIDC tokens (one per process by default).
        seed: seeds generated task ids.
    """

    blocking = False

    def __init__(
        self,
        *,
        clock: ManualClock | None = None,
        auto_create_queues: bool = False,
        limits: rules.Limits = rules.DEFAULT_LIMITS,
        signer: TokenSigner | None = None,
        seed: int | None = 0,
    ) -> None:
        self.clock = clock or ManualClock()
        self.engine = Engine(self.clock, limits=limits, signer=signer, seed=seed)
        self.faults = Faults()
        self.auto_create_queues = auto_create_queues
        self._routes: list[tuple[str, Target]] = []
        self._lock = threading.RLock()
        self.driver = VirtualDriver(self.engine, self.clock, self._route, self._lock)

    def now(self) -> float:
        return self.clock.now()

    def client(
        self, project: str = "test-project", location: str = "us-central1", **options: Any
    ) -> CloudTasks:
        """A :class:`~cloudtasks_kit.CloudTasks` on this fake."""
        from ..client import CloudTasks

        return CloudTasks(project, location, transport=self, **options)

    def async_client(
        self, project: str = "test-project", location: str = "us-central1", **options: Any
    ) -> AsyncCloudTasks:
        """An :class:`~cloudtasks_kit.AsyncCloudTasks` on this fake."""
        from ..aio import AsyncCloudTasks

        return AsyncCloudTasks(project, location, transport=self, **options)

    # The seam.

    def _call(self, name: str, *args: Any) -> Any:
        return self.faults.around(name, self._engine_call, name, args)

    def _engine_call(self, name: str, args: tuple[Any, ...]) -> Any:
        with self._lock:  # the engine is not thread-safe; bulk creates call from several threads
            if self.auto_create_queues and name in ("create_task", "batch_create_tasks"):
                self._ensure_queue(args[0].parent)
            return getattr(self.engine, name)(*args)

    def _ensure_queue(self, name: str) -> None:
        if name and name not in self.engine.queue_names() and "/queues/" in name:
            parent = name.split("/queues/", maxsplit=1)[0]
            request = tasks_v2.CreateQueueRequest.pb()(parent=parent)
            request.queue.name = name
            self.engine.create_queue(request)

    list_queues = _rpc("list_queues", tasks_v2.ListQueuesRequest, tasks_v2.ListQueuesResponse)
    get_queue = _rpc("get_queue", tasks_v2.GetQueueRequest, tasks_v2.Queue)
    create_queue = _rpc("create_queue", tasks_v2.CreateQueueRequest, tasks_v2.Queue)
    update_queue = _rpc("update_queue", tasks_v2.UpdateQueueRequest, tasks_v2.Queue)
    delete_queue = _rpc("delete_queue", tasks_v2.DeleteQueueRequest, None)
    purge_queue = _rpc("purge_queue", tasks_v2.PurgeQueueRequest, tasks_v2.Queue)
    pause_queue = _rpc("pause_queue", tasks_v2.PauseQueueRequest, tasks_v2.Queue)
    resume_queue = _rpc("resume_queue", tasks_v2.ResumeQueueRequest, tasks_v2.Queue)
    list_tasks = _rpc("list_tasks", tasks_v2.ListTasksRequest, tasks_v2.ListTasksResponse)
    get_task = _rpc("get_task", tasks_v2.GetTaskRequest, tasks_v2.Task)
    create_task = _rpc("create_task", tasks_v2.CreateTaskRequest, tasks_v2.Task)
    delete_task = _rpc("delete_task", tasks_v2.DeleteTaskRequest, None)
    run_task = _rpc("run_task", tasks_v2.RunTaskRequest, tasks_v2.Task)

    def batch_create_tasks(self, request: tasks_v2.BatchCreateTasksRequest) -> BatchCreateResult:
        response, metadata = self._call("batch_create_tasks", tasks_v2.BatchCreateTasksRequest.pb(request))
        failures = {int(i): (int(s.code), str(s.message)) for i, s in metadata.failed_requests.items()}
        return BatchCreateResult([tasks_v2.Task.wrap(t) for t in response.tasks], failures)

    def buffer_task(self, request: BufferTaskRequest) -> tasks_v2.Task:
        args = (request.queue, request.task_id, request.method, request.headers, request.body)
        return tasks_v2.Task.wrap(self._call("buffer_task", *args))

    # Delivery on virtual time.

    def deliver_to(
        self, target: Target | Callable[[Dispatch], int | TargetResponse | None], *, url_prefix: str = ""
    ) -> None:
        """Send attempts whose URL starts with ``url_prefix`` (all, by default) to ``target``.

        ``target`` is a :class:`WSGITarget`, :class:`ASGITarget`, :class:`HTTPTarget`, or a plain function
        of the :class:`~cloudtasks_kit.engine.delivery.Dispatch` returning a status code. The longest
        matching prefix wins; an attempt no target takes fails with no answer, as an unreachable host does.
        """
        chosen: Target = target if isinstance(target, _TARGET_TYPES) else CallableTarget(target)
        self._routes = [(p, t) for p, t in self._routes if p != url_prefix] + [(url_prefix, chosen)]
        self._routes.sort(key=lambda route: len(route[0]), reverse=True)

    def deliver_to_wsgi(self, app: Callable[..., Any], *, url_prefix: str = "") -> None:
        """Deliver to a WSGI app in process (Flask, Django, the kit's handler)."""
        self.deliver_to(WSGITarget(app), url_prefix=url_prefix)

    def deliver_to_asgi(self, app: Callable[..., Any], *, url_prefix: str = "") -> None:
        """Deliver to an ASGI app in process (FastAPI, Starlette, the kit's handler)."""
        self.deliver_to(ASGITarget(app), url_prefix=url_prefix)

    def deliver_over_http(self, *, url_prefix: str = "") -> None:
        """Deliver over real HTTP to each task's URL (a local server the test started)."""
        self.deliver_to(HTTPTarget(), url_prefix=url_prefix)

    def _route(self, dispatch: Dispatch) -> Target | None:
        if not self._routes:
            raise LookupError(
                "the fake has no delivery target: call fake.deliver_to(fn), deliver_to_wsgi(app), "
                "deliver_to_asgi(app) or deliver_over_http() before running the queue"
            )
        return next((target for prefix, target in self._routes if dispatch.url.startswith(prefix)), None)

    def run_until_idle(self, *, max_attempts: int = 10_000) -> list[Delivery]:
        """Deliver until nothing is left to dispatch, jumping virtual time to each next due moment."""
        return self.driver.run_until_idle(max_attempts=max_attempts)

    def advance(self, by: timedelta | float) -> list[Delivery]:
        """Move virtual time forward, delivering what falls due on the way."""
        return self.driver.advance(by)

    def run_due(self) -> list[Delivery]:
        """Deliver what is due now, without moving time."""
        return self.driver.run_due()

    @property
    def deliveries(self) -> list[Delivery]:
        """Every attempt so far, in order."""
        return self.driver.deliveries

    # Inspection.

    def queue_name(self, queue: str) -> str:
        """A queue's full name from its full name or its short id (if only one queue has it)."""
        if "/" in queue:
            return queue
        matches = [name for name in self.engine.queue_names() if name.endswith(f"/queues/{queue}")]
        if len(matches) != 1:
            known = ", ".join(self.engine.queue_names()) or "none"
            raise LookupError(
                f"{len(matches)} queues are called {queue!r} (queues: {known}); give the full name"
            )
        return matches[0]

    def tasks(self, queue: str) -> list[Task]:
        """The tasks in a queue, with their bodies (FULL view), in creation order."""
        out = []
        for pb in self.engine.tasks_of(self.queue_name(queue)):
            task = tasks_v2.Task.pb()()
            task.CopyFrom(pb)
            task.view = 2
            out.append(Task(task))
        return out

    def queue(self, queue: str) -> Queue:
        """A queue as GetQueue would show it."""
        pb = tasks_v2.Queue.pb()()
        pb.CopyFrom(self.engine.queue_pb(self.queue_name(queue)))
        return Queue(pb)

    def certs(self) -> dict[str, str]:
        """``{kid: PEM certificate}`` of the key that signs this fake's OIDC tokens."""
        return self.engine.signer.certs()

    def certs_request(self) -> Callable[..., Any]:
        """A ``google.auth.transport.Request`` that answers any URL with :meth:`certs`, for
        ``google.oauth2.id_token.verify_token(token, fake.certs_request(), audience=...)``."""
        return _StaticCertsRequest(self.certs())


class _StaticCertsRequest:
    def __init__(self, certs: dict[str, str]) -> None:
        import json

        self._data = json.dumps(certs).encode()

    def __call__(
        self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        return _Response(self._data)


class _Response:
    status = 200
    headers: dict[str, str] = {"content-type": "application/json"}

    def __init__(self, data: bytes) -> None:
        self.data = data
