"""The service engine: Cloud Tasks' behaviour as pure state with an injected clock.

The fake (:class:`~cloudtasks_kit.transports.fake.FakeTransport`) drives it on virtual time; the emulator
drives it in real time behind gRPC and REST servers.
"""

from .clock import Clock, ManualClock, SystemClock
from .engine import Engine

__all__ = ["Clock", "Engine", "ManualClock", "SystemClock"]
