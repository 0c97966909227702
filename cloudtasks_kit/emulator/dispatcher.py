"""The real-time driver: the engine's attempts sent as real HTTP requests, on the emulator's event loop.

It sleeps until the engine says something is due (or a call wakes it), starts every due attempt as its
own asyncio task, and reports each outcome back to the engine. Schedule times, rate limits, concurrency,
deadlines and backoff are all the engine's; this module only does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp

from ..engine.delivery import Dispatch, Outcome
from ..engine.driver import Delivery
from ..engine.engine import Engine
from ..engine.targets import retry_after

__all__ = ["RealtimeDispatcher"]

log = logging.getLogger("cloudtasks_kit.emulator")

# An answer's body matters only for the log; read this much of it at most.
_MAX_RESPONSE_BODY = 64 * 1024


class RealtimeDispatcher:
    """Delivers an engine's tasks over HTTP until stopped."""

    def __init__(self, engine: Engine, *, on_delivery: Callable[[Delivery], None] | None = None) -> None:
        self.engine = engine
        self.on_delivery = on_delivery
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        engine.on_change = self._wake.set

    async def run(self) -> None:
        """Deliver until cancelled."""
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        try:
            while True:
                for dispatch in self.engine.take_due():
                    task = asyncio.create_task(self._send(dispatch))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
                when = self.engine.next_due()
                timeout = None if when is None else max(0.0, when - self.engine.clock.now())
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)
            await self._session.close()

    async def _send(self, dispatch: Dispatch) -> None:
        assert self._session is not None
        started = time.monotonic()
        body = b""
        try:
            async with self._session.request(
                dispatch.method,
                dispatch.url,
                headers=dispatch.headers,
                data=dispatch.body,
                timeout=aiohttp.ClientTimeout(total=dispatch.deadline),
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding",),
            ) as response:
                body = await response.content.read(_MAX_RESPONSE_BODY)
                outcome = Outcome(response.status, retry_after=retry_after(dict(response.headers)))
        except asyncio.TimeoutError:
            outcome = Outcome(None, error="DEADLINE_EXCEEDED")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            outcome = Outcome(None, error=f"UNREACHABLE: {type(exc).__name__}: {exc}")
        self.engine.finish(dispatch, outcome)
        self._wake.set()
        elapsed_ms = (time.monotonic() - started) * 1000
        log.info(
            "%s %s task=%s retry=%d -> %s (%.0f ms)",
            dispatch.method,
            dispatch.url,
            dispatch.task_id,
            dispatch.retry_count,
            outcome.status if outcome.status is not None else outcome.error,
            elapsed_ms,
        )
        if self.on_delivery is not None:
            self.on_delivery(Delivery.of(dispatch, outcome, body))
