"""Clocks for the engine: real time for the emulator, virtual time for unit tests."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Seconds since the epoch."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """Virtual time that moves only when told to. Starts at the wall clock's now unless given a start.

    Example:
        >>> clock = ManualClock(start=1_700_000_000.0)
        >>> clock.advance(timedelta(seconds=90)); clock.now()
        1700000090.0
    """

    def __init__(self, start: float | datetime | None = None) -> None:
        if isinstance(start, datetime):
            if start.tzinfo is None:
                raise ValueError("ManualClock start must be timezone-aware")
            start = start.timestamp()
        self._now = time.time() if start is None else float(start)

    def now(self) -> float:
        return self._now

    def advance(self, by: timedelta | float) -> None:
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        if seconds < 0:
            raise ValueError(f"time only moves forward (asked to advance by {seconds} s)")
        self._now += seconds

    def set(self, to: float) -> None:
        """Jump to ``to`` (never backwards)."""
        self._now = max(self._now, to)
