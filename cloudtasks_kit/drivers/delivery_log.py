"""The emulator's delivery log: a full line per attempt while it is quiet, a summary per interval when busy.

A developer watching the emulator wants to see each delivery, but a busy emulator (a load test, a
backlog of thousands draining) would spend a good part of its time formatting lines nobody reads. So the
first ``full_lines`` attempts of each ``interval`` get their own INFO line, as always; the rest are
counted, and one INFO line per interval says how many there were and how they ended. With the logger at
DEBUG (``cloudtasks-kit emulator --debug``) every attempt also gets its full line, at DEBUG.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

from ..engine.attempts import AttemptRequest, AttemptResult
from ..logfields import attempt_fields

__all__ = ["DeliveryLog"]

log = logging.getLogger("cloudtasks_kit.emulator")


class DeliveryLog:
    """Logs finished attempts: :meth:`record` each, :meth:`flush` when an interval may have ended."""

    def __init__(
        self,
        *,
        interval: float = 5.0,
        full_lines: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.full_lines = full_lines
        self._clock = clock
        self._started = clock()
        self._shown = 0
        self._outcomes: collections.Counter[str] = collections.Counter()

    @property
    def pending(self) -> bool:
        """Attempts were counted but not yet summarised."""
        return bool(self._outcomes)

    def summary_due(self) -> float | None:
        """When (on the clock) the pending summary should be written; None if nothing is pending."""
        return self._started + self.interval if self._outcomes else None

    def record(self, attempt: AttemptRequest, result: AttemptResult, sent_to: str, elapsed_ms: float) -> None:
        """One finished attempt: its own line, or a count in this interval's summary."""
        self.flush()
        outcome = str(result.status) if result.status is not None else _error_kind(result.error)
        if self._shown < self.full_lines:
            self._shown += 1
            _line(logging.INFO, attempt, result, sent_to, elapsed_ms)
            return
        self._outcomes[outcome] += 1
        if log.isEnabledFor(logging.DEBUG):
            _line(logging.DEBUG, attempt, result, sent_to, elapsed_ms)

    def flush(self, *, force: bool = False) -> None:
        """Write the summary if the interval is over (or ``force``), and start the next interval."""
        now = self._clock()
        if not force and now < self._started + self.interval:
            return
        if self._outcomes:
            total = sum(self._outcomes.values())
            parts = ", ".join(f"{outcome} x{count:,}" for outcome, count in self._outcomes.most_common())
            log.info(
                "busy: %s more attempts in the last %.0f s not logged one by one (%s); every line at DEBUG",
                f"{total:,}",
                now - self._started,
                parts,
            )
            self._outcomes.clear()
        self._started = now
        self._shown = 0


def _error_kind(error: str | None) -> str:
    """``UNREACHABLE: ClientConnectorError: ...`` -> ``UNREACHABLE``: the summary counts kinds."""
    return (error or "no answer").split(":", 1)[0]


def _line(
    level: int, attempt: AttemptRequest, result: AttemptResult, sent_to: str, elapsed_ms: float
) -> None:
    if not log.isEnabledFor(level):  # --quiet: not even the line's fields are worked out
        return
    log.log(
        level,
        "%s %s%s task=%s retry=%d -> %s (%.0f ms)",
        attempt.method,
        attempt.url,
        f" (routed to {sent_to})" if sent_to != attempt.url else "",
        attempt.task_id,
        attempt.retry_count,
        result.status if result.status is not None else result.error,
        elapsed_ms,
        extra=attempt_fields(attempt, result, elapsed_ms),
    )
