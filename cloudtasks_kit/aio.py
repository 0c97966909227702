"""The asynchronous facade: :class:`AsyncCloudTasks`, the same surface as :class:`CloudTasks`, awaitable.

It shares request building and response decoding with the sync facade (:mod:`cloudtasks_kit._operations`);
only the driver differs. The official async client binds to the event loop it is made in, so the default
transport makes it lazily inside the running loop: an ``AsyncCloudTasks`` made at import time is fine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload

from . import _operations as ops
from . import rules
from ._client_base import ClientBase, QueueBase
from ._json import NO_JSON
from ._operations import View
from ._runner import Op, T, arun, arun_plan
from .errors import UsageError
from .retry import DEFAULT_RETRY_POLICY, RetryPolicy
from .transports.base import AsyncTransport, Transport

if TYPE_CHECKING:  # the models load on first use: see _lazy
    from typing_extensions import Unpack

    from .appengine import AppEngineRouting, AppEngineTask
    from .bulk import Chunk, CreateResult, Progress
    from .queues import Queue, QueueHttpTarget, RateLimits, RetryConfig
    from .tasks import Task, TaskOptions, TaskSpec

__all__ = ["AsyncCloudTasks", "AsyncQueueHandle"]


def _async_transport(
    credentials: Any, client_options: Any, host: str | None, rest: str | None
) -> AsyncTransport | Transport:
    """The default async transport (its official client is made later still, in the running loop)."""
    from .transports.grpc import AsyncGrpcTransport

    return AsyncGrpcTransport(
        credentials=credentials, client_options=client_options, emulator_host=host, emulator_rest_host=rest
    )


class AsyncCloudTasks(ClientBase["AsyncTransport | Transport"]):
    """Cloud Tasks for one project and location, with ``async`` methods.

    Takes an :class:`~cloudtasks_kit.transports.AsyncTransport`, or a sync transport (the fake is called
    straight from the loop; a blocking one runs in worker threads).

    As with :class:`~cloudtasks_kit.CloudTasks`, making one looks nothing up: the project, the location
    and the credentials are resolved on first use (with the emulator, ``local-project`` and
    ``us-central1`` by default), so it may be made at import time.

    Example:
        >>> tasks = AsyncCloudTasks(project="my-project", location="us-central1")  # doctest: +SKIP
        >>> await tasks.queue("emails").create_task("https://worker.example.com/send")  # doctest: +SKIP
    """

    def __init__(
        self,
        project: str | None = None,
        location: str | None = None,
        *,
        transport: AsyncTransport | Transport | str | None = None,
        credentials: Any = None,
        emulator_host: str | None = None,
        client_options: Any = None,
        limits: rules.Limits = rules.DEFAULT_LIMITS,
        retry_policy: RetryPolicy | None = DEFAULT_RETRY_POLICY,
    ) -> None:
        given: AsyncTransport | Transport | None = None
        if isinstance(transport, (AsyncTransport, Transport)):
            given = transport
        elif transport not in (None, "grpc"):
            raise UsageError(
                f"transport {transport!r} must be 'grpc' or a transport instance "
                "(the official client has no async REST; "
                "pass RestTransport() to run it in worker threads)"
            )
        super().__init__(
            project,
            location,
            transport=given,
            emulator_host=emulator_host,
            make_transport=lambda host, rest: _async_transport(credentials, client_options, host, rest),
            uses_emulator=lambda host, rest: bool(host),
            kind="AsyncGrpcTransport",
            limits=limits,
            retry_policy=retry_policy,
        )

    def queue(self, queue_id: str) -> AsyncQueueHandle:
        """A handle on the queue ``queue_id`` (no I/O)."""
        return AsyncQueueHandle(self, queue_id)

    async def list_queues(self, *, page_size: int | None = None) -> AsyncIterator[Queue]:
        """Every queue in the location, fetching pages as it goes."""
        token = ""
        while True:
            queues, token = await arun(self.transport, ops.list_queues_page(self.parent, page_size, token))
            for queue in queues:
                yield queue
            if not token:
                return

    async def close(self) -> None:
        """Close the transport's connections (if it was ever made)."""
        transport = self._made_transport()
        if isinstance(transport, AsyncTransport):
            await transport.close()
        elif transport is not None:
            transport.close()

    async def __aenter__(self) -> AsyncCloudTasks:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class AsyncQueueHandle(QueueBase[AsyncCloudTasks]):
    """One queue, with ``async`` methods. Get one from :meth:`AsyncCloudTasks.queue`."""

    async def _run(self, op: Op[T]) -> T:
        return self._seen(await arun(self.client.transport, op))

    # Tasks.

    @overload
    async def create_task(
        self, spec: TaskSpec | AppEngineTask, /, *, retry_policy: RetryPolicy | None = None
    ) -> Task: ...

    @overload
    async def create_task(
        self, url: str, /, *, retry_policy: RetryPolicy | None = None, **options: Unpack[TaskOptions]
    ) -> Task: ...

    async def create_task(
        self,
        url: str | TaskSpec | AppEngineTask,
        /,
        *,
        retry_policy: RetryPolicy | None = None,
        **options: Unpack[TaskOptions],
    ) -> Task:
        """Create an HTTP task; see :meth:`QueueHandle.create_task`."""
        return await arun_plan(self.client.transport, self._create_plan(url, options, retry_policy))

    async def create_tasks(
        self,
        specs: Iterable[TaskSpec | AppEngineTask | Mapping[str, Any]],
        *,
        retry_policy: RetryPolicy | None = None,
        concurrency: int = 4,
        on_progress: Progress | None = None,
    ) -> list[CreateResult]:
        """Create many tasks; see :meth:`QueueHandle.create_tasks`."""
        work = self._bulk(specs, retry_policy, on_progress)
        transport = self.client.transport
        slots = asyncio.Semaphore(max(1, concurrency))

        async def one(chunk: Chunk) -> Chunk:
            async with slots:
                await work.arun_chunk(transport, chunk)
            return chunk

        for finished in asyncio.as_completed([one(chunk) for chunk in work.chunks]):
            work.progressed(await finished)
        return work.outcome()

    async def buffer_task(
        self,
        body: bytes | None = None,
        *,
        text: str | None = None,
        json: Any = NO_JSON,
        task_id: str | None = None,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
    ) -> Task:
        """BufferTask; see :meth:`QueueHandle.buffer_task`."""
        return await self._run(
            self._buffer(body, text=text, json=json, task_id=task_id, method=method, headers=headers)
        )

    async def get_task(self, task: str | Task, *, view: View = "BASIC") -> Task:
        return await self._run(ops.get_task(ops.task_name(self.name, task), view))

    async def list_tasks(self, *, view: View = "BASIC", page_size: int | None = None) -> AsyncIterator[Task]:
        token = ""
        while True:
            tasks, token = await self._run(ops.list_tasks_page(self.name, view, page_size, token))
            for task in tasks:
                yield task
            if not token:
                return

    async def delete_task(self, task: str | Task) -> None:
        await self._run(ops.delete_task(ops.task_name(self.name, task)))

    async def run_task(self, task: str | Task, *, view: View = "BASIC") -> Task:
        return await self._run(ops.run_task(ops.task_name(self.name, task), view))

    # Administration.

    async def create(
        self,
        *,
        rate_limits: RateLimits | None = None,
        retry: RetryConfig | None = None,
        http_target: QueueHttpTarget | None = None,
        app_engine_routing: AppEngineRouting | None = None,
    ) -> Queue:
        return await self._run(
            ops.create_queue(
                self.name, self.client.parent, (rate_limits, retry, http_target, app_engine_routing)
            )
        )

    async def ensure(
        self,
        *,
        rate_limits: RateLimits | None = None,
        retry: RetryConfig | None = None,
        http_target: QueueHttpTarget | None = None,
        app_engine_routing: AppEngineRouting | None = None,
    ) -> Queue:
        return await self._run(
            ops.ensure_queue(
                self.name, self.client.parent, (rate_limits, retry, http_target, app_engine_routing)
            )
        )

    async def update(
        self,
        *,
        rate_limits: RateLimits | None = None,
        retry: RetryConfig | None = None,
        http_target: QueueHttpTarget | None = None,
        app_engine_routing: AppEngineRouting | None = None,
    ) -> Queue:
        return await self._run(
            ops.update_queue(self.name, (rate_limits, retry, http_target, app_engine_routing))
        )

    async def get(self) -> Queue:
        return await self._run(ops.get_queue(self.name))

    async def pause(self) -> Queue:
        return await self._run(ops.pause_queue(self.name))

    async def resume(self) -> Queue:
        return await self._run(ops.resume_queue(self.name))

    async def purge(self) -> Queue:
        return await self._run(ops.purge_queue(self.name))

    async def delete(self) -> None:
        await self._run(ops.delete_queue(self.name))
