"""The transport seam: what crosses it is a row of the call table and its official request message.

Everything above the seam (building requests, checking rules, mapping errors, retrying, decoding) is the
same code whatever the transport. A transport only moves messages: the production ones hand them to the
official generated client; the fake hands them to the in-process engine. A transport implements one
method, :meth:`Transport.call`, typed by the row it is given (see :mod:`.calls`)::

    task = transport.call(CREATE_TASK, tasks_v2.CreateTaskRequest(parent=queue, task=...))  # a Task

Transports raise what the official gRPC client raises (``google.api_core`` exceptions); the facade maps
those to the kit's errors, so a transport never needs to. Time is the transport's too: ``now()`` is
where a ``delay`` counts from and ``sleep()`` is how the facade waits between retries, so a fake on
virtual time never sleeps for real.
"""

from __future__ import annotations

import abc
import asyncio
import time
from typing import TypeVar

from .calls import BatchCreateResult, BufferTaskRequest, Rpc

__all__ = ["AsyncTransport", "BatchCreateResult", "BufferTaskRequest", "Transport"]

ReqT = TypeVar("ReqT")
RespT = TypeVar("RespT")


class Transport(abc.ABC):
    """A synchronous transport.

    ``AsyncCloudTasks`` accepts a sync transport too: it calls a non-``blocking`` one (an in-process
    backend such as the fake) straight from the event loop, and a blocking one in a worker thread.

    Example, a transport that answers every call from a function (as httpx's ``MockTransport`` does)::

        class Canned(Transport):
            def call(self, rpc, request):
                if rpc is CREATE_TASK:
                    return tasks_v2.Task(name=request.parent + "/tasks/1")
                raise google.api_core.exceptions.Unimplemented(rpc.name)
    """

    blocking: bool = True

    def now(self) -> float:
        """Seconds since the epoch on the backend's clock; ``delay`` is counted from here."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Wait on the backend's clock (between retries of a create)."""
        time.sleep(seconds)

    @abc.abstractmethod
    def call(self, rpc: Rpc[ReqT, RespT], request: ReqT) -> RespT:
        """Make one call of the table: ``request`` in, the row's response type out."""

    def close(self) -> None:  # noqa: B027 - transports without resources need not override it
        """Release connections."""


class AsyncTransport(abc.ABC):
    """The asynchronous twin of :class:`Transport`: the same method, awaitable."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    @abc.abstractmethod
    async def call(self, rpc: Rpc[ReqT, RespT], request: ReqT) -> RespT:
        """Make one call of the table."""

    async def close(self) -> None:  # noqa: B027
        """Release connections."""
