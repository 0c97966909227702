"""The attempts a driver has made, kept for inspection: a bounded ring, newest last.

Tests and the CLI read attempts back (``fake.attempts``, ``emulator.attempts``); an emulator left running
all day must not keep every one of them, so the ring forgets the oldest past its size. Records keep no
bearer tokens (see :class:`~cloudtasks_kit.engine.attempts.AttemptRecord`).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator, Sequence
from typing import overload

from ..engine.attempts import AttemptRecord

__all__ = ["DEFAULT_HISTORY_SIZE", "History"]

DEFAULT_HISTORY_SIZE = 10_000
"""Attempts kept by default: plenty for a test, a few MiB for an emulator left running."""


class History(Sequence[AttemptRecord]):
    """The last ``size`` attempt records, oldest first; ``total`` counts every attempt ever recorded.

    Args:
        size: how many records to keep (None: all of them, for a test that wants every attempt).
    """

    def __init__(self, size: int | None = DEFAULT_HISTORY_SIZE) -> None:
        if size is not None and size < 0:
            raise ValueError(f"history size {size} must be 0 or more (None keeps every attempt)")
        self._records: collections.deque[AttemptRecord] = collections.deque(maxlen=size)
        self.total = 0
        """Attempts recorded since the start, forgotten ones included."""
        self.changed = threading.Condition()
        """Notified after each new record (the emulator's ``wait_for_attempts`` waits on it)."""

    @property
    def size(self) -> int | None:
        return self._records.maxlen

    def append(self, record: AttemptRecord) -> None:
        with self.changed:
            self._records.append(record)
            self.total += 1
            self.changed.notify_all()

    def last(self) -> AttemptRecord | None:
        return self._records[-1] if self._records else None

    def since(self, time: float) -> list[AttemptRecord]:
        """The records kept of attempts dispatched at ``time`` or later, newest first.

        Walks back from the newest record only as far as ``time``, so asking for the last minute costs
        what the last minute held, not the whole ring.
        """
        out = []
        for record in reversed(self._records):
            if record.time < time:
                break
            out.append(record)
        return out

    def clear(self) -> None:
        """Forget the records kept (``total`` stays)."""
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[AttemptRecord]:
        return iter(list(self._records))  # a snapshot: another thread may append meanwhile

    @overload
    def __getitem__(self, index: int) -> AttemptRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[AttemptRecord]: ...

    def __getitem__(self, index: int | slice) -> AttemptRecord | list[AttemptRecord]:
        if isinstance(index, slice):
            return list(self._records)[index]
        return self._records[index]

    def __repr__(self) -> str:
        return f"History({len(self)} kept of {self.total}, size={self.size})"
