"""The in-process fake backend: the engine behind the transport seam, on virtual time.

    >>> fake = FakeTransport()
    >>> tasks = fake.client()                      # CloudTasks(project="test-project", ...) on the fake
    >>> _ = tasks.queue("emails").create()
    >>> _ = tasks.queue("emails").create_task("https://worker.test/send", json={"to": "a@b.c"})
    >>> fake.deliver_to(lambda attempt: 200)
    >>> [a.status for a in fake.run_until_idle()]
    [200]

It answers like the service (strict: queues must exist, unless ``auto_create_queues=True``), raises what
the official gRPC client raises, and still encodes every request and decodes every response.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from google.cloud import tasks_v2

from .. import rules
from ..drivers.history import DEFAULT_HISTORY_SIZE, History
from ..drivers.targets import ASGITarget, CallableTarget, HTTPTarget, Target, TargetResponse, WSGITarget
from ..drivers.virtual import VirtualDriver
from ..engine.attempts import AttemptRecord, AttemptRequest
from ..engine.clock import ManualClock
from ..engine.engine import Engine
from ..engine.faults import Faults
from ..engine.tokens import TokenSigner
from ..names import short_id
from ..queues import Queue
from ..tasks import Task
from .base import Transport
from .calls import Rpc

if TYPE_CHECKING:
    from ..aio import AsyncCloudTasks
    from ..client import CloudTasks

__all__ = ["FakeTransport"]

_TARGET_TYPES = (WSGITarget, ASGITarget, CallableTarget, HTTPTarget)


ReqT = TypeVar("ReqT")
RespT = TypeVar("RespT")


class FakeTransport(Transport):
    """Cloud Tasks in process, on a :class:`~cloudtasks_kit.engine.clock.ManualClock`.

    Args:
        clock: the virtual clock (a new one at the wall clock's now by default).
        auto_create_queues: create a queue with default settings on its first task, for test convenience
            (the service answers NOT_FOUND; so does the fake unless this is set).
        limits: the configurable service limits.
        signer: the key that signs OIDC tokens (one per process by default).
        seed: seeds generated task ids.
        history: how many attempts :attr:`attempts` keeps (None: every one).
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
        history: int | None = DEFAULT_HISTORY_SIZE,
    ) -> None:
        self.clock = clock or ManualClock()
        self.engine = Engine(
            self.clock, limits=limits, signer=signer, seed=seed, auto_create_queues=auto_create_queues
        )
        self.faults: Faults = self.engine.faults
        self._routes: list[tuple[str, Target]] = []
        self._lock = threading.RLock()
        self.driver = VirtualDriver(self.engine, self.clock, self._route, self._lock)
        self.driver.history = History(history)

    def now(self) -> float:
        return self.clock.now()

    def sleep(self, seconds: float) -> None:
        """Waiting on the fake moves its virtual clock (delivering nothing): retries never sleep for real."""
        with self._lock:
            self.clock.advance(max(0.0, seconds))

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

    def call(self, rpc: Rpc[ReqT, RespT], request: ReqT) -> RespT:
        raw = rpc.encode(request)
        with self._lock:  # the engine is not thread-safe; bulk creates call from several threads
            return rpc.decode(self.engine.call(rpc.name, raw))

    @property
    def auto_create_queues(self) -> bool:
        """Whether a missing queue is created on its first task (the engine's setting)."""
        return self.engine.auto_create_queues

    @auto_create_queues.setter
    def auto_create_queues(self, value: bool) -> None:
        self.engine.auto_create_queues = value

    # Delivery on virtual time.

    def deliver_to(
        self,
        target: Target | Callable[[AttemptRequest], int | TargetResponse | None],
        *,
        url_prefix: str = "",
    ) -> None:
        """Send attempts whose URL starts with ``url_prefix`` (all, by default) to ``target``.

        ``target`` is a :class:`WSGITarget`, :class:`ASGITarget`, :class:`HTTPTarget`, or a plain function
        of the :class:`~cloudtasks_kit.engine.attempts.AttemptRequest` returning a status code. The longest
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

    def _route(self, attempt: AttemptRequest) -> Target | None:
        if not self._routes:
            raise LookupError(
                "the fake has no delivery target: call fake.deliver_to(fn), deliver_to_wsgi(app), "
                "deliver_to_asgi(app) or deliver_over_http() before running the queue"
            )
        return next((target for prefix, target in self._routes if attempt.url.startswith(prefix)), None)

    def run_until_idle(self, *, max_attempts: int = 10_000) -> list[AttemptRecord]:
        """Deliver until nothing is left to dispatch, jumping virtual time to each next due moment."""
        return self.driver.run_until_idle(max_attempts=max_attempts)

    def advance(self, by: timedelta | float) -> list[AttemptRecord]:
        """Move virtual time forward, delivering what falls due on the way."""
        return self.driver.advance(by)

    def run_due(self) -> list[AttemptRecord]:
        """Deliver what is due now, without moving time."""
        return self.driver.run_due()

    @property
    def attempts(self) -> History:
        """The attempts made so far, oldest first (the last ``history`` of them)."""
        return self.driver.history

    @property
    def deliveries(self) -> History:
        """The former name of :attr:`attempts`."""
        return self.driver.history

    # Inspection.

    def queue_name(self, queue: str) -> str:
        """A queue's full name from its full name or its short id (if only one queue has it)."""
        if "/" in queue:
            return queue
        matches = [name for name in self.engine.queue_names() if short_id(name) == queue]
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
            task.view = tasks_v2.Task.View.FULL
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
