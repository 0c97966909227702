"""Transports: the seam between the facade and a backend. See :mod:`cloudtasks_kit.transports.base`."""

from .base import AsyncTransport, BatchCreateResult, BufferTaskRequest, Transport

__all__ = [
    "AsyncGrpcTransport",
    "AsyncTransport",
    "BatchCreateResult",
    "BufferTaskRequest",
    "FakeTransport",
    "GrpcTransport",
    "RestTransport",
    "Transport",
]


def __getattr__(name: str) -> object:
    # The production transports pull in grpc and the official client's transports; load them on use.
    if name in ("GrpcTransport", "AsyncGrpcTransport"):
        from . import grpc

        return getattr(grpc, name)
    if name == "RestTransport":
        from .rest import RestTransport

        return RestTransport
    if name == "FakeTransport":
        from .fake import FakeTransport

        return FakeTransport
    raise AttributeError(name)
