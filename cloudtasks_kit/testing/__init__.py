"""Testing with the fake: fixtures (via the pytest plugin), inspection and assertion helpers."""

from ..engine.clock import ManualClock
from ..engine.delivery import Dispatch
from ..engine.driver import Delivery, NotIdleError
from ..engine.faults import Faults
from ..engine.targets import ASGITarget, CallableTarget, HTTPTarget, TargetResponse, WSGITarget
from ..transports.fake import FakeTransport
from .assertions import assert_delivered, assert_enqueued

__all__ = [
    "ASGITarget",
    "CallableTarget",
    "Delivery",
    "Dispatch",
    "FakeTransport",
    "Faults",
    "HTTPTarget",
    "ManualClock",
    "NotIdleError",
    "TargetResponse",
    "WSGITarget",
    "assert_delivered",
    "assert_enqueued",
]
