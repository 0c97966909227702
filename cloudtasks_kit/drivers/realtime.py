"""The real-time driver: the engine's attempts sent as real HTTP requests, on the emulator's event loop.

It sleeps until the engine says something is due (or a call wakes it), starts every due attempt as its
own asyncio task, and reports each outcome back to the engine. Schedule times, rate limits, concurrency,
deadlines and backoff are all the engine's; this module only does the I/O.

Where an attempt goes is decided at send time by an optional ``resolve`` function (the emulator's
:class:`~cloudtasks_kit.emulator.routes.Router`): it may rewrite the URL (a route to a local worker) or
refuse it by raising :class:`DeliveryRefused`, before any socket is opened. The task keeps its own URL;
the attempt's record keeps both.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import aiohttp

from ..engine.attempts import AttemptRecord, AttemptRequest, AttemptResult, parse_retry_after
from ..engine.engine import Engine
from .delivery_log import DeliveryLog

__all__ = ["DeliveryRefused", "RealtimeDriver", "Resolver"]

log = logging.getLogger("cloudtasks_kit.emulator")

# An answer's body matters only for the log; read this much of it at most.
_MAX_RESPONSE_BODY = 64 * 1024
_LOOP_RETRY = 1.0


class DeliveryRefused(Exception):
    """Raised by a resolver: this attempt must not be sent; the message says why and what to do."""


Resolver = Callable[[str], str]
"""``resolve(url) -> url to send to``; raises :class:`DeliveryRefused` to refuse the attempt."""


class RealtimeDriver:
    """Delivers an engine's tasks over HTTP until stopped, reporting each finished attempt to ``on_attempt``."""

    def __init__(
        self,
        engine: Engine,
        *,
        on_attempt: Callable[[AttemptRecord], None] | None = None,
        resolve: Resolver | None = None,
    ) -> None:
        self.engine = engine
        self.resolve = resolve
        self.scheduler = engine.scheduler
        self.on_attempt = on_attempt
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._taking = True
        self._stopped = False
        self.delivery_log = DeliveryLog()
        """Each attempt's line while quiet, a summary per interval when busy."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        with contextlib.suppress(RuntimeError):  # made on its loop (the emulator does): known before run()
            self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        engine.on_change = self._changed

    @property
    def in_flight(self) -> int:
        """Attempts being sent now."""
        return len(self._running)

    async def drain(self, grace: float) -> int:
        """Start no more attempts, wait up to ``grace`` seconds for the running ones, then end :meth:`run`.

        Returns how many were still running: :meth:`run` abandons them as it ends (unfinished, their
        tasks are due again).
        """
        self._taking = False
        running = set(self._running)
        if running and grace > 0:
            await asyncio.wait(running, timeout=grace)
        left = sum(1 for task in self._running if not task.done())
        # Ended by a flag, not by cancelling: asyncio.wait_for (before 3.12) may swallow a cancellation
        # that arrives as the event it waits on is set.
        self._stopped = True
        self._wake.set()
        return left

    def _changed(self) -> None:
        # The engine may change on a gRPC server thread (see emulator/engine_access.py).
        if self._loop is None or threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Deliver until cancelled or drained (:meth:`drain`)."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        try:
            while not self._stopped:
                when = None
                try:
                    if self._taking:
                        for attempt in self.scheduler.take_due():
                            task = asyncio.create_task(self._send(attempt))
                            self._running.add(task)
                            task.add_done_callback(self._running.discard)
                        self.engine.journal.commit()  # the started attempts' counts, before they are sent
                        when = self.scheduler.next_due()
                except Exception:  # a bug must not stop every queue's delivery: log it, look again soon
                    log.exception("the delivery loop failed; retrying in %.1f s", _LOOP_RETRY)
                    when = self.engine.clock.now() + _LOOP_RETRY
                timeout = None if when is None else max(0.0, when - self.engine.clock.now())
                summary = self.delivery_log.summary_due()  # a quiet spell still gets the busy one's summary
                if summary is not None:
                    until = max(0.0, summary - time.monotonic())
                    timeout = until if timeout is None else min(timeout, until)
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self.delivery_log.flush()
        finally:
            self.delivery_log.flush(force=True)
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)
            await self._session.close()

    async def _send(self, attempt: AttemptRequest) -> None:
        """One attempt, supervised: whatever goes wrong, the attempt is reported as failed (so the task is
        retried under its rules) and nothing else stops."""
        started = time.monotonic()
        sent_to = attempt.url
        try:
            sent_to = self._destination(attempt)
            # Sent as a copy with the URL it goes to; the engine is told about the attempt it started.
            sending = attempt if sent_to == attempt.url else dataclasses.replace(attempt, url=sent_to)
            result = await self._request(sending)
        except DeliveryRefused as exc:
            result = AttemptResult(None, error=f"REFUSED: {exc}")
        except Exception as exc:
            log.exception(
                "attempt of task %s (queue %s) failed in the emulator", attempt.task_name, attempt.queue_name
            )
            result = AttemptResult(None, error=f"INTERNAL: {type(exc).__name__}")
        latency = time.monotonic() - started
        outcome = None
        try:
            outcome = self.scheduler.finish(attempt, result)
            self.engine.journal.commit()
        except Exception:
            log.exception(
                "recording the attempt of task %s (queue %s) failed", attempt.task_name, attempt.queue_name
            )
        self._wake.set()
        self.delivery_log.record(attempt, result, sent_to, latency * 1000)
        if self.on_attempt is not None:
            try:
                record = AttemptRecord.of(attempt, result, outcome=outcome, latency=latency)
                if sent_to != attempt.url:
                    record = dataclasses.replace(record, routed_url=sent_to)
                self.on_attempt(record)
            except Exception:
                log.exception("the on_attempt callback failed")

    def _destination(self, attempt: AttemptRequest) -> str:
        """Where to send ``attempt``: its URL, or the resolver's answer (which may refuse it)."""
        if self.resolve is None or attempt.failed is not None:
            return attempt.url
        return self.resolve(attempt.url)

    async def _request(self, attempt: AttemptRequest) -> AttemptResult:
        # Host is left to aiohttp, from the URL actually sent to (a routed attempt's is the local
        # worker's): the engine never puts one in the headers, as Host is computed by the service too.
        assert self._session is not None
        if attempt.failed is not None:
            return AttemptResult(None, error=attempt.failed)
        try:
            async with self._session.request(
                attempt.method,
                attempt.url,
                headers=attempt.headers,
                data=attempt.body,
                timeout=aiohttp.ClientTimeout(total=attempt.deadline),
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding",),
            ) as response:
                body = await response.content.read(_MAX_RESPONSE_BODY)
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"),
                    now=time.time(),
                    maximum=self.scheduler.max_retry_after,
                )
                return AttemptResult(response.status, retry_after=retry_after, body=body)
        except asyncio.TimeoutError:
            return AttemptResult(None, error="DEADLINE_EXCEEDED")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return AttemptResult(None, error=f"UNREACHABLE: {type(exc).__name__}: {exc}")
