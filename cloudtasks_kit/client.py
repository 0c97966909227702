"""The synchronous facade: :class:`CloudTasks` and its queue handles."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload

from . import _operations as ops
from . import rules
from ._client_base import ClientBase, QueueBase
from ._json import NO_JSON
from ._operations import View
from ._runner import Op, T, run, run_plan
from .errors import UsageError
from .retry import DEFAULT_RETRY_POLICY, RetryPolicy
from .transports.base import Transport

if TYPE_CHECKING:  # the models load on first use: see _lazy
    from typing_extensions import Unpack

    from .appengine import AppEngineRouting, AppEngineTask
    from .bulk import CreateResult, Progress
    from .queues import Queue, QueueHttpTarget, RateLimits, RetryConfig
    from .tasks import Task, TaskOptions, TaskSpec

__all__ = ["CloudTasks", "QueueHandle"]


_KINDS: dict[str | None, str] = {None: "GrpcTransport", "grpc": "GrpcTransport", "rest": "RestTransport"}


def _sync_transport(
    name: str | None, credentials: Any, client_options: Any, host: str | None, rest: str | None
) -> Transport:
    """The default transport named ``name``, to the emulator if its addresses are set."""
    if name == "rest":
        from .transports.rest import RestTransport

        return RestTransport(
            credentials=credentials,
            client_options=client_options,
            emulator_host=host,
            emulator_rest_host=rest,
        )
    from .transports.grpc import GrpcTransport

    return GrpcTransport(
        credentials=credentials, client_options=client_options, emulator_host=host, emulator_rest_host=rest
    )


def _sync_uses_emulator(name: str | None) -> Callable[[str | None, str | None], bool]:
    # gRPC goes to the emulator given its gRPC address; REST given either (the REST one, or gRPC port + 1).
    return lambda host, rest: bool(host or (name == "rest" and rest))


class CloudTasks(ClientBase[Transport]):
    """Cloud Tasks for one project and location.

    With no ``transport`` it uses the official gRPC client with application default credentials, or
    the emulator when ``emulator_host`` (or ``CLOUDTASKS_EMULATOR_HOST``) names one.

    Making one does no I/O and looks nothing up: the project and location (the arguments, else
    ``GOOGLE_CLOUD_PROJECT`` and ``CLOUDTASKS_LOCATION``, else with the emulator ``local-project`` and
    ``us-central1``) are resolved when first needed, and the official client, with its credentials, is
    made on the first call. A missing project is then a :class:`UsageError`, missing credentials an
    :class:`Unauthenticated` saying how to get them. So ``tasks = CloudTasks()`` may sit at module level.

    Example:
        >>> tasks = CloudTasks(project="my-project", location="us-central1")  # doctest: +SKIP
        >>> emails = tasks.queue("emails")  # doctest: +SKIP
        >>> emails.create_task("https://worker.example.com/send", json={"to": "a@b.c"})  # doctest: +SKIP
    """

    def __init__(
        self,
        project: str | None = None,
        location: str | None = None,
        *,
        transport: Transport | str | None = None,
        credentials: Any = None,
        emulator_host: str | None = None,
        client_options: Any = None,
        limits: rules.Limits = rules.DEFAULT_LIMITS,
        retry_policy: RetryPolicy | None = DEFAULT_RETRY_POLICY,
    ) -> None:
        given: Transport | None = None
        name: str | None = None
        if isinstance(transport, Transport):
            given = transport
        elif transport is None or (isinstance(transport, str) and transport in _KINDS):
            name = transport
        else:
            raise UsageError(f"transport {transport!r} must be 'grpc', 'rest' or a Transport instance")
        super().__init__(
            project,
            location,
            transport=given,
            emulator_host=emulator_host,
            make_transport=lambda host, rest: _sync_transport(name, credentials, client_options, host, rest),
            uses_emulator=_sync_uses_emulator(name),
            kind=_KINDS.get(name, ""),
            limits=limits,
            retry_policy=retry_policy,
        )

    def queue(self, queue_id: str) -> QueueHandle:
        """A handle on the queue ``queue_id`` (no I/O: the queue need not exist yet)."""
        return QueueHandle(self, queue_id)

    def list_queues(self, *, page_size: int | None = None) -> Iterator[Queue]:
        """Every queue in the location, fetching pages as it goes."""
        token = ""
        while True:
            queues, token = self._run(ops.list_queues_page(self.parent, page_size, token))
            yield from queues
            if not token:
                return

    def _run(self, op: Op[T]) -> T:
        return run(self.transport, op)

    def close(self) -> None:
        """Close the transport's connections (if it was ever made)."""
        transport = self._made_transport()
        if transport is not None:
            transport.close()

    def __enter__(self) -> CloudTasks:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class QueueHandle(QueueBase[CloudTasks]):
    """One queue: its tasks and its administration. Get one from :meth:`CloudTasks.queue`."""

    def _run(self, op: Op[T]) -> T:
        return self._seen(run(self.client.transport, op))

    # Tasks.

    @overload
    def create_task(
        self, spec: TaskSpec | AppEngineTask, /, *, retry_policy: RetryPolicy | None = None
    ) -> Task: ...

    @overload
    def create_task(
        self, url: str, /, *, retry_policy: RetryPolicy | None = None, **options: Unpack[TaskOptions]
    ) -> Task: ...

    def create_task(
        self,
        url: str | TaskSpec | AppEngineTask,
        /,
        *,
        retry_policy: RetryPolicy | None = None,
        **options: Unpack[TaskOptions],
    ) -> Task:
        """Create an HTTP task from a URL and the keywords of :class:`TaskSpec`, or from a spec.

        A task with an id (``task_id`` or ``dedup_key``) is retried on transient errors under the
        client's retry policy (or ``retry_policy``); one without is not: see :mod:`cloudtasks_kit.retry`.

        Example:
            ``queue.create_task("https://w.example.com/send", json={"id": 1}, delay=timedelta(minutes=5))``
        """
        return run_plan(self.client.transport, self._create_plan(url, options, retry_policy))

    def create_tasks(
        self,
        specs: Iterable[TaskSpec | AppEngineTask | Mapping[str, Any]],
        *,
        retry_policy: RetryPolicy | None = None,
        concurrency: int = 4,
        on_progress: Progress | None = None,
    ) -> list[CreateResult]:
        """Create many tasks with BatchCreateTasks (100 per call, ``concurrency`` calls at a time).

        Returns a :class:`CreateResult` per input, in input order: the task, or why it was not created.
        Specs may be :class:`TaskSpec` or mappings of its fields (checked one by one, never raising).
        """
        work = self._bulk(specs, retry_policy, on_progress)
        transport = self.client.transport
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="cloudtasks-kit") as pool:
            running = {pool.submit(work.run_chunk, transport, chunk): chunk for chunk in work.chunks}
            for future in as_completed(running):
                future.result()
                work.progressed(running[future])
        return work.outcome()

    def buffer_task(
        self,
        body: bytes | None = None,
        *,
        text: str | None = None,
        json: Any = NO_JSON,
        task_id: str | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
    ) -> Task:
        """Create a task from a body alone, routed by the queue's HTTP target (BufferTask, over REST).

        The queue needs queue-level routing (``QueueHttpTarget(uri_override=UriOverride(host=...))``);
        its method override, if any, wins over ``method``. Give ``task_id`` to deduplicate.

        Example:
            ``queue.buffer_task(json={"event": "signup"}, task_id="signup-42")``
        """
        return self._run(
            self._buffer(body, text=text, json=json, task_id=task_id, method=method, headers=headers)
        )

    def get_task(self, task: str | Task, *, view: View = "BASIC") -> Task:
        """A task by id (or full name); ``view="FULL"`` includes the body."""
        return self._run(ops.get_task(ops.task_name(self.name, task), view))

    def list_tasks(self, *, view: View = "BASIC", page_size: int | None = None) -> Iterator[Task]:
        """Every task in the queue, fetching pages as it goes."""
        token = ""
        while True:
            tasks, token = self._run(ops.list_tasks_page(self.name, view, page_size, token))
            yield from tasks
            if not token:
                return

    def delete_task(self, task: str | Task) -> None:
        """Delete a task; its id stays taken for a while (see :class:`~cloudtasks_kit.rules.Limits`)."""
        self._run(ops.delete_task(ops.task_name(self.name, task)))

    def run_task(self, task: str | Task, *, view: View = "BASIC") -> Task:
        """Dispatch a task now, ignoring rate limits and a paused queue."""
        return self._run(ops.run_task(ops.task_name(self.name, task), view))

    # Administration.

    def create(
        self,
        *,
        rate_limits: RateLimits | None = None,
        retry: RetryConfig | None = None,
        http_target: QueueHttpTarget | None = None,
        app_engine_routing: AppEngineRouting | None = None,
    ) -> Queue:
        """Create the queue; ``AlreadyExists`` if it exists."""
        return self._run(
            ops.create_queue(
                self.name, self.client.parent, (rate_limits, retry, http_target, app_engine_routing)
            )
        )

    def ensure(
        self,
        *,
        rate_limits: RateLimits | None = None,
        retry: RetryConfig | None = None,
        http_target: QueueHttpTarget | None = None,
        app_engine_routing: AppEngineRouting | None = None,
    ) -> Queue:
        """Create the queue if missing, else update the fields given where they differ. Idempotent."""
        return self._run(
            ops.ensure_queue(
                self.name, self.client.parent, (rate_limits, retry, http_target, app_engine_routing)
            )
        )

    def update(
        self,
        *,
        rate_limits: RateLimits | None = None,
        retry: RetryConfig | None = None,
        http_target: QueueHttpTarget | None = None,
        app_engine_routing: AppEngineRouting | None = None,
    ) -> Queue:
        """Update only the fields given (and, within them, only the attributes set)."""
        return self._run(ops.update_queue(self.name, (rate_limits, retry, http_target, app_engine_routing)))

    def get(self) -> Queue:
        return self._run(ops.get_queue(self.name))

    def pause(self) -> Queue:
        """Stop dispatching; tasks can still be added."""
        return self._run(ops.pause_queue(self.name))

    def resume(self) -> Queue:
        return self._run(ops.resume_queue(self.name))

    def purge(self) -> Queue:
        """Delete every task in the queue."""
        return self._run(ops.purge_queue(self.name))

    def delete(self) -> None:
        """Delete the queue and its tasks; its name stays taken for a few days."""
        self._run(ops.delete_queue(self.name))
