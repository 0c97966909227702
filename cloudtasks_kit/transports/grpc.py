"""Transports over the official generated client: gRPC (sync and async); REST lives in ``rest.py``.

Each row of the call table (:mod:`.calls`) is a pass-through to the ``tasks_v2.CloudTasksClient`` method
of the same name: the official client's own defaults
(timeouts, its retry on reads) stay in force unless ``retry``/``timeout`` are given here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar, cast

from google.api_core import gapic_v1
from google.cloud import tasks_v2

from ._buffer import DEFAULT_REST_ENDPOINT, BufferClient
from .base import AsyncTransport, Transport
from .calls import BufferTaskRequest, Rpc, batch_result

__all__ = ["AsyncGrpcTransport", "ClientTransport", "GrpcTransport"]

DEFAULT = gapic_v1.method.DEFAULT
ReqT = TypeVar("ReqT")
RespT = TypeVar("RespT")


def _options(retry: Any, timeout: Any) -> dict[str, Any]:
    options = {}
    if retry is not DEFAULT:
        options["retry"] = retry
    if timeout is not DEFAULT:
        options["timeout"] = timeout
    return options


class ClientTransport(Transport):
    """A sync transport over any ``tasks_v2.CloudTasksClient``; BufferTask goes over REST."""

    def __init__(
        self,
        client: tasks_v2.CloudTasksClient,
        *,
        buffer: BufferClient | None = None,
        retry: Any = DEFAULT,
        timeout: Any = DEFAULT,
    ) -> None:
        self.client = client
        self._buffer = buffer or BufferClient(DEFAULT_REST_ENDPOINT)
        self._call_options = _options(retry, timeout)

    def call(self, rpc: Rpc[ReqT, RespT], request: ReqT) -> RespT:
        if isinstance(request, BufferTaskRequest):
            return rpc.decode(self._buffer.buffer(request))
        response = getattr(self.client, rpc.name)(request=request, **self._call_options)
        if rpc.kind == "page":
            response = next(iter(response.pages))
        elif rpc.kind == "operation":
            response = batch_result(response.result().tasks, response.metadata)
        # The official client answers with the row's response type (the table pins it for each call).
        return cast(RespT, response)

    def close(self) -> None:
        self.client.transport.close()
        self._buffer.close()


class GrpcTransport(ClientTransport):
    """The production transport: the official client over gRPC.

    With ``emulator_host="host:port"`` it dials that address in plaintext with no credentials (the
    official client's ``api_endpoint`` alone would still dial TLS), and sends BufferTask to the emulator's
    REST address ``emulator_rest_host`` (default: the same host, port + 1).
    """

    def __init__(
        self,
        *,
        credentials: Any = None,
        client_options: Any = None,
        emulator_host: str | None = None,
        emulator_rest_host: str | None = None,
        retry: Any = DEFAULT,
        timeout: Any = DEFAULT,
    ) -> None:
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        if emulator_host:
            import grpc

            channel = grpc.insecure_channel(emulator_host)
            client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
            buffer = BufferClient(rest_endpoint(emulator_host, emulator_rest_host), anonymous=True)
        else:
            client = tasks_v2.CloudTasksClient(credentials=credentials, client_options=client_options)
            buffer = BufferClient(DEFAULT_REST_ENDPOINT, credentials=credentials)
        super().__init__(client, buffer=buffer, retry=retry, timeout=timeout)


def rest_endpoint(emulator_host: str, emulator_rest_host: str | None) -> str:
    """The emulator's REST base URL: ``emulator_rest_host``, else the gRPC host with port + 1."""
    if emulator_rest_host:
        return emulator_rest_host if "://" in emulator_rest_host else f"http://{emulator_rest_host}"
    host, _, port = emulator_host.rpartition(":")
    return f"http://{host}:{int(port) + 1}"


class AsyncGrpcTransport(AsyncTransport):
    """The official async client over gRPC asyncio.

    The async client's channel binds to the event loop it is made in, so it is made lazily, inside the
    running loop, and made again if a later call runs in another loop (an app created at import time,
    a test runner with a loop per test).
    """

    def __init__(
        self,
        *,
        credentials: Any = None,
        client_options: Any = None,
        emulator_host: str | None = None,
        emulator_rest_host: str | None = None,
        retry: Any = DEFAULT,
        timeout: Any = DEFAULT,
        client_factory: Callable[[], tasks_v2.CloudTasksAsyncClient] | None = None,
    ) -> None:
        self._credentials = credentials
        self._client_options = client_options
        self._emulator_host = emulator_host
        self._factory = client_factory
        self._call_options = _options(retry, timeout)
        self._clients: dict[asyncio.AbstractEventLoop, tasks_v2.CloudTasksAsyncClient] = {}
        if emulator_host:
            self._buffer = BufferClient(rest_endpoint(emulator_host, emulator_rest_host), anonymous=True)
        else:
            self._buffer = BufferClient(DEFAULT_REST_ENDPOINT, credentials=credentials)

    def _client(self) -> tasks_v2.CloudTasksAsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for stale in [other for other in self._clients if other.is_closed()]:
                del self._clients[stale]
            client = self._clients[loop] = self._make_client()
        return client

    def _make_client(self) -> tasks_v2.CloudTasksAsyncClient:
        if self._factory is not None:
            return self._factory()
        if self._emulator_host:
            import grpc
            from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcAsyncIOTransport

            channel = grpc.aio.insecure_channel(self._emulator_host)
            return tasks_v2.CloudTasksAsyncClient(transport=CloudTasksGrpcAsyncIOTransport(channel=channel))
        return tasks_v2.CloudTasksAsyncClient(
            credentials=self._credentials, client_options=self._client_options
        )

    async def call(self, rpc: Rpc[ReqT, RespT], request: ReqT) -> RespT:
        if isinstance(request, BufferTaskRequest):
            return rpc.decode(await asyncio.to_thread(self._buffer.buffer, request))
        response = await getattr(self._client(), rpc.name)(request=request, **self._call_options)
        if rpc.kind == "page":
            response = await anext(aiter(response.pages))
        elif rpc.kind == "operation":
            response = batch_result((await response.result()).tasks, response.metadata)
        return cast(RespT, response)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.transport.close()
        self._buffer.close()
