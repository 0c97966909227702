"""The emulator's gRPC server: the ``google.cloud.tasks.v2.CloudTasks`` service and the Operations and
Locations calls the official client makes, over plaintext.

It is the sync ``grpc.server`` on a few threads, which answers more calls per second than ``grpc.aio``
(docs/performance.md); the handlers reach the engine through :class:`~.engine_access.EngineAccess`."""

from __future__ import annotations

import asyncio
import logging
from concurrent import futures
from typing import Any

import grpc
from google.api_core import exceptions as core
from google.protobuf import empty_pb2

from ..engine.engine import Engine
from ..transports.calls import RPCS, Rpc
from .engine_access import EngineAccess

__all__ = ["GrpcServer", "start_grpc_server"]

log = logging.getLogger("cloudtasks_kit.emulator")
_EMPTY = empty_pb2.Empty()
# Handlers hold the engine for microseconds; more threads only add switching on a small machine.
_THREADS = 4


class _Malformed:
    """A request that did not parse: answered INVALID_ARGUMENT instead of gRPC's INTERNAL."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _deserializer(message_class: Any) -> Any:
    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except Exception as exc:  # DecodeError, and anything else a garbled message may raise
            return _Malformed(exc)

    return parse


def _handler(engine: Engine, access: EngineAccess, rpc: Rpc[Any, Any]) -> Any:
    call, name = engine.call, rpc.name

    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, _Malformed):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"malformed {rpc.method} request: {request.error}"
            )
        try:
            response = access.call(call, name, request)
        except core.GoogleAPICallError as exc:
            code, message = exc.grpc_status_code or grpc.StatusCode.UNKNOWN, exc.message
        except Exception:
            log.exception("%s failed", rpc.method)
            code, message = grpc.StatusCode.INTERNAL, f"the emulator failed on {rpc.method}; see its log"
        else:
            return _EMPTY if response is None else response
        # abort raises: called outside the try, so that it is not caught as a failure of the call
        return context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=_deserializer(rpc.wire_request), response_serializer=_serialize
    )


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


class GrpcServer:
    """The running server: :meth:`stop` it on the loop that started it."""

    def __init__(self, server: grpc.Server, threads: futures.ThreadPoolExecutor) -> None:
        self._server = server
        self._threads = threads

    async def stop(self, grace: float) -> None:
        """Refuse new calls and wait up to ``grace`` seconds for running ones; the loop keeps serving the
        hops of those calls meanwhile. Then the handler threads end (grpc leaves its pool running)."""
        stopped = self._server.stop(grace)
        await asyncio.get_running_loop().run_in_executor(None, stopped.wait)
        self._threads.shutdown(wait=False)


async def start_grpc_server(engine: Engine, host: str, port: int) -> tuple[GrpcServer, int]:
    """Start serving on ``host:port`` (0 picks a free port); returns the server and the bound port.

    One handler per row of the call table that has a gRPC method (all but BufferTask). Call it on the
    engine's loop: the handlers reach the engine through that loop."""
    access = EngineAccess(asyncio.get_running_loop())
    executor = futures.ThreadPoolExecutor(_THREADS, thread_name_prefix="cloudtasks-kit-grpc")
    server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
    by_service: dict[str, dict[str, Any]] = {}
    for rpc in RPCS.values():
        if rpc.method:
            by_service.setdefault(rpc.service, {})[rpc.method] = _handler(engine, access, rpc)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(name, handlers) for name, handlers in by_service.items()]
    )
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpc.server raises where grpc.aio returned 0
        bound = 0
    if bound == 0:
        executor.shutdown(wait=False)
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    server.start()
    return GrpcServer(server, executor), bound
