"""The emulator's gRPC server: the ``google.cloud.tasks.v2.CloudTasks`` service and the Operations and
Locations calls the official client makes, on ``grpc.aio`` over plaintext."""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.api_core import exceptions as core
from google.protobuf import empty_pb2

from ..engine.engine import Engine
from ..transports.calls import RPCS, Rpc

__all__ = ["start_grpc_server"]

log = logging.getLogger("cloudtasks_kit.emulator")
_EMPTY = empty_pb2.Empty()


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


def _handler(engine: Engine, rpc: Rpc[Any, Any]) -> Any:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, _Malformed):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"malformed {rpc.method} request: {request.error}"
            )
        try:
            response = engine.call(rpc.name, request)
            return _EMPTY if response is None else response
        except core.GoogleAPICallError as exc:
            code = exc.grpc_status_code or grpc.StatusCode.UNKNOWN
            await context.abort(code, exc.message)
        except Exception:
            log.exception("%s failed", rpc.method)
            await context.abort(grpc.StatusCode.INTERNAL, f"the emulator failed on {rpc.method}; see its log")

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=_deserializer(rpc.wire_request), response_serializer=_serialize
    )


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


async def start_grpc_server(engine: Engine, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """Start serving on ``host:port`` (0 picks a free port); returns the server and the bound port.

    One handler per row of the call table that has a gRPC method (all but BufferTask)."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    by_service: dict[str, dict[str, Any]] = {}
    for rpc in RPCS.values():
        if rpc.method:
            by_service.setdefault(rpc.service, {})[rpc.method] = _handler(engine, rpc)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(name, handlers) for name, handlers in by_service.items()]
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    return server, bound
