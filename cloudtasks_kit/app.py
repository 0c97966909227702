"""The task decorator: a function becomes something you enqueue, and a route a handler runs it at.

    app = TaskApp(
        base_url="https://worker-abc.a.run.app",
        queue="emails",
        oidc=OidcToken(service_account_email="tasks@my-project.iam.gserviceaccount.com"),
    )

    @app.task(dedup_key=lambda to, **_: f"welcome:{to}")
    def send_welcome(to: str, name: str = "there") -> None:
        ...

    app.bind(CloudTasks(project="my-project", location="us-central1"))
    send_welcome.enqueue("ada@example.com", name="Ada")              # validated now, run in the worker
    send_welcome.options(delay=timedelta(hours=1)).enqueue("bob@example.com")
    send_welcome("carol@example.com")                                 # still a plain call

The worker serves :class:`~cloudtasks_kit.handler.TaskHandler` (WSGI or ASGI) over the same app.

An app targets an HTTP worker (``base_url=``: its functions make a :class:`TaskSpec` each) or an App
Engine service (``app_engine=AppEngineRouting(service="worker")``: an :class:`AppEngineTask` each, whose
relative URI is the function's route). ``TaskApp`` is generic in the spec it makes, so
``send_welcome.spec(...)`` is typed as the one or the other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from typing_extensions import TypeVar as DefaultTypeVar

from . import rules
from .aio import AsyncCloudTasks
from .appengine import AppEngineRouting, AppEngineTask
from .auth import OAuthToken, OidcToken
from .bulk import CreateResult
from .client import CloudTasks
from .errors import UsageError, ValidationError
from .payload import ArgumentCodec, encode_envelope
from .queues import RetryConfig
from .tasks import Task, TaskSpec
from .verify import GOOGLE_CERTS_URL, TokenVerifier

__all__ = ["BoundTask", "TaskApp", "TaskFunction"]

P = ParamSpec("P")
R = TypeVar("R")
SpecT = DefaultTypeVar("SpecT", bound=TaskSpec | AppEngineTask, default=TaskSpec)
"""The spec an app's functions make: :class:`TaskSpec` (``base_url=``) or :class:`AppEngineTask`
(``app_engine=``); a bare ``TaskApp`` is an HTTP app."""

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_ROUTE_RE = re.compile(r"/[A-Za-z0-9_.~!$&'()*+,;=:@%/-]*")


@dataclasses.dataclass(frozen=True)
class _CallOptions:
    delay: timedelta | None = None
    at: datetime | None = None
    task_id: str | None = None
    dedup_key: str | None = None
    queue: str | None = None
    deadline: timedelta | None = None
    headers: dict[str, str] | None = None


class TaskApp(Generic[SpecT]):
    """Binds task functions to a client, a default queue, where the worker runs and the auth tasks carry.

    Give exactly one target: ``base_url`` for an HTTP worker, or ``app_engine`` for an App Engine service.

    Args:
        client: the :class:`CloudTasks` (or :class:`AsyncCloudTasks`) to enqueue with; or bind one later
            with :meth:`bind`, so the app can live at module level.
        base_url: where the worker runs, e.g. ``https://worker-abc.a.run.app``; the app is then a
            ``TaskApp[TaskSpec]``.
        app_engine: the App Engine service (version, instance) of the queue's project that runs the
            functions, e.g. ``AppEngineRouting(service="worker")``; the app is then a
            ``TaskApp[AppEngineTask]``. Its tasks carry no token: see docs/app-engine.md for the handler.
        queue: the default queue.
        route_prefix: the path under which task functions are served (``/tasks`` by default).
        oidc: the token tasks carry; its audience defaults to ``base_url``, which the handler checks.
            HTTP targets only.
        oauth: an OAuth token instead (for targets on ``*.googleapis.com``). HTTP targets only.
        deadline: the default dispatch deadline.
        retry: the default per-task retry config (None: the queue's).
    """

    @overload
    def __init__(
        self: TaskApp[TaskSpec],
        client: CloudTasks | AsyncCloudTasks | None = None,
        *,
        base_url: str,
        queue: str = "default",
        route_prefix: str = "/tasks",
        oidc: OidcToken | None = None,
        oauth: OAuthToken | None = None,
        deadline: timedelta | None = None,
        retry: RetryConfig | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: TaskApp[AppEngineTask],
        client: CloudTasks | AsyncCloudTasks | None = None,
        *,
        app_engine: AppEngineRouting,
        queue: str = "default",
        route_prefix: str = "/tasks",
        deadline: timedelta | None = None,
        retry: RetryConfig | None = None,
    ) -> None: ...

    def __init__(
        self,
        client: CloudTasks | AsyncCloudTasks | None = None,
        *,
        base_url: str | None = None,
        app_engine: AppEngineRouting | None = None,
        queue: str = "default",
        route_prefix: str = "/tasks",
        oidc: OidcToken | None = None,
        oauth: OAuthToken | None = None,
        deadline: timedelta | None = None,
        retry: RetryConfig | None = None,
    ) -> None:
        _check_target(base_url, app_engine, oidc=oidc, oauth=oauth)
        self.base_url = None if base_url is None else rules.check_url(base_url.rstrip("/"), field="base_url")
        """Where an HTTP app's worker runs (None for an App Engine app)."""
        self.app_engine = app_engine
        """The App Engine service an App Engine app's tasks go to (None for an HTTP app)."""
        rules.check_queue_id(queue)
        if not route_prefix.startswith("/") or (route_prefix.endswith("/") and route_prefix != "/"):
            raise ValidationError("route_prefix", route_prefix, "must start with '/' and not end with one")
        if oidc is not None and oidc.audience is None:
            oidc = OidcToken(service_account_email=oidc.service_account_email, audience=self.base_url)
        self.client = client
        self.queue = queue
        self.route_prefix = "" if route_prefix == "/" else route_prefix
        self.oidc = oidc
        self.oauth = oauth
        self.deadline = deadline
        self.retry = retry
        self.tasks: dict[str, TaskFunction[Any, Any, SpecT]] = {}
        """Task functions by name."""
        self.routes: dict[str, TaskFunction[Any, Any, SpecT]] = {}
        """Task functions by the path they are served at."""

    def bind(self, client: CloudTasks | AsyncCloudTasks) -> None:
        """Set the client to enqueue with (for an app created before its client)."""
        self.client = client

    def route(self, name: str) -> str:
        return f"{self.route_prefix}/{name}"

    @overload
    def task(self, fn: Callable[P, R], /) -> TaskFunction[P, R, SpecT]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        route: str | None = None,
        queue: str | None = None,
        deadline: timedelta | None = None,
        retry: RetryConfig | None = None,
        dedup_key: Callable[..., str] | None = None,
    ) -> Callable[[Callable[P, R]], TaskFunction[P, R, SpecT]]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        route: str | None = None,
        queue: str | None = None,
        deadline: timedelta | None = None,
        retry: RetryConfig | None = None,
        dedup_key: Callable[..., str] | None = None,
    ) -> Any:
        """Make a function enqueueable: ``@app.task`` or ``@app.task(queue=..., dedup_key=...)``.

        ``name`` is the function's name by default; ``route``, the path it is served at, is
        ``{route_prefix}/{name}`` by default.
        ``dedup_key`` is called with the task's arguments and gives the key that makes its stable id.
        """

        def decorate(function: Callable[..., Any]) -> TaskFunction[Any, Any, SpecT]:
            task_name = name or function.__name__
            if not _NAME_RE.fullmatch(task_name):
                raise ValidationError(
                    "task name", task_name, "may contain only letters, digits, '_', '.' and '-'"
                )
            if task_name in self.tasks:
                raise UsageError(f"a task named {task_name!r} is already registered; give one of them name=")
            path = route or self.route(task_name)
            if not _ROUTE_RE.fullmatch(path):
                raise ValidationError(
                    "route", path, "must be a path starting with '/', with no query or fragment"
                )
            if path in self.routes:
                raise UsageError(f"{self.routes[path].name!r} is already served at {path!r}; give route=")
            if queue is not None:
                rules.check_queue_id(queue)
            made: TaskFunction[Any, Any, SpecT] = TaskFunction(
                self,
                function,
                name=task_name,
                route=path,
                queue=queue,
                deadline=deadline,
                retry=retry,
                dedup_key=dedup_key,
            )
            self.tasks[task_name] = made
            self.routes[path] = made
            return made

        return decorate(fn) if fn is not None else decorate

    def verifier(self, *, certs_url: str = GOOGLE_CERTS_URL, certs: Any = None) -> TokenVerifier:
        """A verifier for this app's tasks: the OIDC audience and service account it configures."""
        if self.app_engine is not None:
            raise UsageError(
                "the app's tasks go to App Engine, which sends them without a token, so there is nothing to "
                "verify: on App Engine give TaskHandler(app, trust_app_engine_headers=True)"
            )
        if self.oidc is None or self.oidc.audience is None:
            raise UsageError(
                "the app sends no OIDC token, so there is nothing to verify: give TaskApp(oidc=OidcToken(...)), "
                "pass your own TokenVerifier, or switch verification off for local use"
            )
        return TokenVerifier(
            audience=self.oidc.audience,
            service_accounts=[self.oidc.service_account_email],
            certs_url=certs_url,
            certs=certs,
        )

    def _sync_client(self) -> CloudTasks:
        if isinstance(self.client, CloudTasks):
            return self.client
        raise UsageError(
            "enqueue() needs a CloudTasks client: TaskApp(client=...) or app.bind(CloudTasks(...))"
        )

    def _limits(self) -> rules.Limits:
        return self.client.limits if self.client is not None else rules.DEFAULT_LIMITS

    def _spec(self, route: str, content: dict[str, Any]) -> SpecT:
        """The spec of a task to ``route`` on this app's target, with what every target shares."""
        made: TaskSpec | AppEngineTask
        if self.app_engine is not None:
            made = AppEngineTask(relative_uri=route, routing=self.app_engine, **content)
        else:
            made = TaskSpec(url=f"{self.base_url}{route}", oidc=self.oidc, oauth=self.oauth, **content)
        return cast(SpecT, made)


def _check_target(
    base_url: str | None,
    app_engine: AppEngineRouting | None,
    *,
    oidc: OidcToken | None,
    oauth: OAuthToken | None,
) -> None:
    """Exactly one of ``base_url`` and ``app_engine``; no token with ``app_engine``."""
    if base_url is not None and app_engine is not None:
        raise ValidationError(
            "base_url and app_engine",
            (base_url, app_engine),
            "are exclusive: give base_url for an HTTP worker or app_engine for an App Engine service",
        )
    if app_engine is None:
        if base_url is None:
            raise ValidationError(
                "base_url",
                base_url,
                "is missing: give base_url='https://...' (an HTTP worker) or "
                "app_engine=AppEngineRouting(...) (an App Engine service)",
            )
        return
    if not isinstance(app_engine, AppEngineRouting):
        raise ValidationError(
            "app_engine", app_engine, "must be an AppEngineRouting(service=..., version=..., instance=...)"
        )
    for field, token in (("oidc", oidc), ("oauth", oauth)):
        if token is not None:
            raise ValidationError(
                field,
                token,
                "cannot be given with app_engine: App Engine tasks carry no token (on App Engine the "
                "handler trusts the X-AppEngine-* headers instead: TaskHandler(app, "
                "trust_app_engine_headers=True))",
            )


class BoundTask(Generic[P, R, SpecT]):
    """A task function with per-call options; get one from :meth:`TaskFunction.options`."""

    def __init__(self, function: TaskFunction[P, R, SpecT], options: _CallOptions) -> None:
        self._function = function
        self._options = options

    def spec(self, *args: P.args, **kwargs: P.kwargs) -> SpecT:
        """The task a call would create, validated and encoded, not sent (for ``enqueue_many``): a
        :class:`TaskSpec`, or an :class:`AppEngineTask` for an App Engine app."""
        fn, options = self._function, self._options
        app = fn.app
        body = encode_envelope(fn.name, fn.codec.dump(args, kwargs))
        limit = app._limits().max_task_bytes
        if len(body) > limit:
            raise ValidationError(
                f"arguments of {fn.name}",
                f"{len(body)} bytes of JSON",
                f"exceed the task size limit of {limit} bytes",
            )
        task_id, dedup = options.task_id, options.dedup_key
        if task_id is None and dedup is None and fn.dedup_key is not None:
            dedup = fn.dedup_key(*args, **kwargs)
        content = {
            "body": body,
            "headers": {"Content-Type": "application/json", **(options.headers or {})},
            "delay": options.delay,
            "at": options.at,
            "deadline": options.deadline or fn.deadline or app.deadline,
            "task_id": task_id,
            "dedup_key": dedup,
            "retry": fn.retry or app.retry,
        }
        return app._spec(fn.route, content)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Task:
        """Create the task that runs this function with these arguments in the worker."""
        spec = self.spec(*args, **kwargs)
        return self._function.app._sync_client().queue(self._queue()).create_task(spec)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Task:
        """:meth:`enqueue` with an :class:`AsyncCloudTasks` (a sync client runs in a worker thread)."""
        spec = self.spec(*args, **kwargs)
        client = self._function.app.client
        if isinstance(client, AsyncCloudTasks):
            return await client.queue(self._queue()).create_task(spec)
        queue = self._function.app._sync_client().queue(self._queue())
        return await asyncio.to_thread(queue.create_task, spec)

    def enqueue_many(self, specs: Iterable[SpecT], **bulk: Any) -> list[CreateResult]:
        """Create many tasks of this function at once (see ``QueueHandle.create_tasks``).

        Example:
            ``send_welcome.enqueue_many(send_welcome.spec(to) for to in addresses)``
        """
        return self._function.app._sync_client().queue(self._queue()).create_tasks(specs, **bulk)

    def _queue(self) -> str:
        return self._options.queue or self._function.queue or self._function.app.queue


class TaskFunction(BoundTask[P, R, SpecT]):
    """A function made enqueueable by :meth:`TaskApp.task`; calling it still just calls it."""

    def __init__(
        self,
        app: TaskApp[SpecT],
        fn: Callable[P, R],
        *,
        name: str,
        route: str,
        queue: str | None,
        deadline: timedelta | None,
        retry: RetryConfig | None,
        dedup_key: Callable[..., str] | None,
    ) -> None:
        super().__init__(self, _CallOptions())
        self.app = app
        self.fn = fn
        self.name = name
        self.route = route
        """The path the handler serves this function at."""
        self.queue = queue
        self.deadline = deadline
        self.retry = retry
        self.dedup_key = dedup_key
        self.codec = ArgumentCodec(fn, name)
        self.is_async = asyncio.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def options(
        self,
        *,
        delay: timedelta | None = None,
        at: datetime | None = None,
        task_id: str | None = None,
        dedup_key: str | None = None,
        queue: str | None = None,
        deadline: timedelta | None = None,
        headers: dict[str, str] | None = None,
    ) -> BoundTask[P, R, SpecT]:
        """This function with per-call options: schedule, id or key, queue, deadline, headers."""
        if queue is not None:
            rules.check_queue_id(queue)
        return BoundTask(self, _CallOptions(delay, at, task_id, dedup_key, queue, deadline, headers))

    def __repr__(self) -> str:
        return f"TaskFunction({self.name!r}, route={self.route!r})"
