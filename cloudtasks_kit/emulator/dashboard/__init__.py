"""The emulator's web dashboard: queues, their tasks, and each task's journey, live, on the REST port.

See docs/dashboard.md. :class:`Dashboard` adds its routes to the REST server's aiohttp app;
:mod:`.views` builds what the pages show from the engine's state and the History of attempts.
"""

from __future__ import annotations

from .app import ACTIONS, Dashboard, is_loopback

__all__ = ["ACTIONS", "Dashboard", "is_loopback"]
