"""Testing with the fake: fixtures (via the pytest plugin), inspection and assertion helpers.

Names load on first use, so the pytest plugin (which lives in this package) costs nothing until a test
asks for a fixture.

PYTEST_DONT_REWRITE: pytest imports this for its plugin; there are no asserts to rewrite.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..drivers.history import History
    from ..drivers.targets import ASGITarget, CallableTarget, HTTPTarget, TargetResponse, WSGITarget
    from ..drivers.virtual import NotIdleError
    from ..engine.attempts import AttemptRecord, AttemptRequest, AttemptResult
    from ..engine.clock import ManualClock
    from ..engine.faults import Faults
    from ..transports.fake import FakeTransport
    from .assertions import assert_delivered, assert_enqueued

    Delivery = AttemptRecord
    Dispatch = AttemptRequest

_HOME = {
    "ASGITarget": ("..drivers.targets", "ASGITarget"),
    "AttemptRecord": ("..engine.attempts", "AttemptRecord"),
    "AttemptRequest": ("..engine.attempts", "AttemptRequest"),
    "AttemptResult": ("..engine.attempts", "AttemptResult"),
    "CallableTarget": ("..drivers.targets", "CallableTarget"),
    "Delivery": ("..engine.attempts", "AttemptRecord"),  # the former name of AttemptRecord
    "Dispatch": ("..engine.attempts", "AttemptRequest"),  # the former name of AttemptRequest
    "FakeTransport": ("..transports.fake", "FakeTransport"),
    "Faults": ("..engine.faults", "Faults"),
    "HTTPTarget": ("..drivers.targets", "HTTPTarget"),
    "History": ("..drivers.history", "History"),
    "ManualClock": ("..engine.clock", "ManualClock"),
    "NotIdleError": ("..drivers.virtual", "NotIdleError"),
    "TargetResponse": ("..drivers.targets", "TargetResponse"),
    "WSGITarget": ("..drivers.targets", "WSGITarget"),
    "assert_delivered": (".assertions", "assert_delivered"),
    "assert_enqueued": (".assertions", "assert_enqueued"),
}

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


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home[0], __name__), home[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
