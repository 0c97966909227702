"""The transport seam: what crosses it is the official ``tasks_v2`` request and response messages.

Everything above the seam (building requests, checking rules, mapping errors, retrying, decoding) is the
same code whatever the transport. A transport only moves messages: the production ones hand them to the
official generated client; the fake hands them to the in-process engine.

Transports raise what the official gRPC client raises (``google.api_core`` exceptions); the facade maps
those to the kit's errors, so a transport never needs to.
"""

from __future__ import annotations

import abc
import dataclasses
import time

from google.cloud import tasks_v2

__all__ = ["AsyncTransport", "BatchCreateResult", "BufferTaskRequest", "Transport"]


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


class Transport(abc.ABC):
    """A synchronous transport: one method per RPC, official messages in and out.

    ``AsyncCloudTasks`` accepts a sync transport too: it calls a non-``blocking`` one (an in-process
    backend such as the fake) straight from the event loop, and a blocking one in a worker thread.
    """

    blocking: bool = True

    def now(self) -> float:
        """Seconds since the epoch on the backend's clock; ``delay`` is counted from here."""
        return time.time()

    @abc.abstractmethod
    def list_queues(self, request: tasks_v2.ListQueuesRequest) -> tasks_v2.ListQueuesResponse:
        """One page of queues."""

    @abc.abstractmethod
    def get_queue(self, request: tasks_v2.GetQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    def create_queue(self, request: tasks_v2.CreateQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    def update_queue(self, request: tasks_v2.UpdateQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    def delete_queue(self, request: tasks_v2.DeleteQueueRequest) -> None: ...

    @abc.abstractmethod
    def purge_queue(self, request: tasks_v2.PurgeQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    def pause_queue(self, request: tasks_v2.PauseQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    def resume_queue(self, request: tasks_v2.ResumeQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    def list_tasks(self, request: tasks_v2.ListTasksRequest) -> tasks_v2.ListTasksResponse:
        """One page of tasks."""

    @abc.abstractmethod
    def get_task(self, request: tasks_v2.GetTaskRequest) -> tasks_v2.Task: ...

    @abc.abstractmethod
    def create_task(self, request: tasks_v2.CreateTaskRequest) -> tasks_v2.Task: ...

    @abc.abstractmethod
    def batch_create_tasks(self, request: tasks_v2.BatchCreateTasksRequest) -> BatchCreateResult:
        """Run a BatchCreateTasks operation to its end."""

    @abc.abstractmethod
    def delete_task(self, request: tasks_v2.DeleteTaskRequest) -> None: ...

    @abc.abstractmethod
    def run_task(self, request: tasks_v2.RunTaskRequest) -> tasks_v2.Task: ...

    @abc.abstractmethod
    def buffer_task(self, request: BufferTaskRequest) -> tasks_v2.Task:
        """BufferTask over REST (there is no gRPC path for it)."""

    def close(self) -> None:  # noqa: B027 - transports without resources need not override it
        """Release connections."""


class AsyncTransport(abc.ABC):
    """The asynchronous twin of :class:`Transport`: the same methods, awaitable."""

    def now(self) -> float:
        return time.time()

    @abc.abstractmethod
    async def list_queues(self, request: tasks_v2.ListQueuesRequest) -> tasks_v2.ListQueuesResponse: ...

    @abc.abstractmethod
    async def get_queue(self, request: tasks_v2.GetQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    async def create_queue(self, request: tasks_v2.CreateQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    async def update_queue(self, request: tasks_v2.UpdateQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    async def delete_queue(self, request: tasks_v2.DeleteQueueRequest) -> None: ...

    @abc.abstractmethod
    async def purge_queue(self, request: tasks_v2.PurgeQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    async def pause_queue(self, request: tasks_v2.PauseQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    async def resume_queue(self, request: tasks_v2.ResumeQueueRequest) -> tasks_v2.Queue: ...

    @abc.abstractmethod
    async def list_tasks(self, request: tasks_v2.ListTasksRequest) -> tasks_v2.ListTasksResponse: ...

    @abc.abstractmethod
    async def get_task(self, request: tasks_v2.GetTaskRequest) -> tasks_v2.Task: ...

    @abc.abstractmethod
    async def create_task(self, request: tasks_v2.CreateTaskRequest) -> tasks_v2.Task: ...

    @abc.abstractmethod
    async def batch_create_tasks(self, request: tasks_v2.BatchCreateTasksRequest) -> BatchCreateResult: ...

    @abc.abstractmethod
    async def delete_task(self, request: tasks_v2.DeleteTaskRequest) -> None: ...

    @abc.abstractmethod
    async def run_task(self, request: tasks_v2.RunTaskRequest) -> tasks_v2.Task: ...

    @abc.abstractmethod
    async def buffer_task(self, request: BufferTaskRequest) -> tasks_v2.Task: ...

    async def close(self) -> None:  # noqa: B027
        """Release connections."""
