"""Testing with the fake: fixtures (via the pytest plugin), inspection and assertion helpers."""

from ..drivers.history import History
from ..drivers.targets import ASGITarget, CallableTarget, HTTPTarget, TargetResponse, WSGITarget
from ..drivers.virtual import NotIdleError
from ..engine.attempts import AttemptRecord, AttemptRequest, AttemptResult
from ..engine.clock import ManualClock
from ..engine.faults import Faults
from ..transports.fake import FakeTransport
from .assertions import assert_delivered, assert_enqueued

Delivery = AttemptRecord
"""The former name of :class:`AttemptRecord`."""
Dispatch = AttemptRequest
"""The former name of :class:`AttemptRequest`."""

__all__ = [
    "ASGITarget",
    "AttemptRecord",
    "AttemptRequest",
    "AttemptResult",
    "CallableTarget",
    "Delivery",
    "Dispatch",
    "FakeTransport",
    "Faults",
    "HTTPTarget",
    "History",
    "ManualClock",
    "NotIdleError",
    "TargetResponse",
    "WSGITarget",
    "assert_delivered",
    "assert_enqueued",
]
