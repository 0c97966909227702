"""Drivers: what moves the engine's attempts out into the world, beside the pure engine.

- :class:`~cloudtasks_kit.drivers.virtual.VirtualDriver`: on virtual time, for unit tests (the fake).
- :class:`~cloudtasks_kit.drivers.realtime.RealtimeDriver`: in real time over HTTP (the emulator).
- :mod:`~cloudtasks_kit.drivers.targets`: where the virtual driver sends an attempt (WSGI, ASGI, a
  callable, real HTTP).
- :class:`~cloudtasks_kit.drivers.history.History`: the bounded record of attempts made.

The realtime driver needs aiohttp (the ``emulator`` extra); import it from its module.
"""

from .history import History
from .targets import ASGITarget, CallableTarget, HTTPTarget, Target, TargetResponse, WSGITarget
from .virtual import NotIdleError, VirtualDriver

__all__ = [
    "ASGITarget",
    "CallableTarget",
    "HTTPTarget",
    "History",
    "NotIdleError",
    "Target",
    "TargetResponse",
    "VirtualDriver",
    "WSGITarget",
]
