"""Fault injection: make RPCs fail on purpose, before they take effect or after ("lost responses").

Shared by the fake and the emulator, which consult :meth:`Faults.decide` around every RPC.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from google.api_core import exceptions as core

from ..errors import StatusCode

__all__ = ["Fault", "Faults"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Fault:
    """One injected failure. ``lost=True``: the call takes effect, then the caller sees the error."""

    code: StatusCode
    message: str
    lost: bool = False

    def exception(self) -> core.GoogleAPICallError:
        """What the official gRPC client raises for this status."""
        import grpc

        return core.from_grpc_status(grpc.StatusCode[self.code.name], self.message)


class Faults:
    """The faults waiting to happen, per RPC method name (``create_task``, ``get_queue``...).

    Example:
        >>> faults = Faults()
        >>> faults.fail("create_task", StatusCode.UNAVAILABLE, times=2)
        >>> faults.fail_randomly(["create_task"], rate=0.2, lost_fraction=0.5, seed=1)
    """

    def __init__(self) -> None:
        self._queued: dict[str, deque[Fault]] = {}
        self._random: dict[str, tuple[float, tuple[StatusCode, ...], float, random.Random]] = {}
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        """How many faults each method got, lost ones included."""
        self.lost: Counter[str] = Counter()
        """How many of those took effect before failing."""
        self.planned = False
        """Whether any fault was planned since the last :meth:`clear` (the engine's fast path when not)."""

    def fail(
        self,
        method: str | Iterable[str],
        code: StatusCode = StatusCode.UNAVAILABLE,
        *,
        times: int = 1,
        lost: bool = False,
        message: str | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` fail with ``code`` (after taking effect if ``lost``)."""
        fault = Fault(code, message or f"injected fault: {code.name}", lost)
        with self._lock:
            for name in _names(method):
                self._queued.setdefault(name, deque()).extend([fault] * times)
            self.planned = True

    def fail_randomly(
        self,
        method: str | Iterable[str],
        *,
        rate: float,
        codes: Iterable[StatusCode] = (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED),
        lost_fraction: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """Each call of ``method`` fails with probability ``rate``, with one of ``codes``; a
        ``lost_fraction`` of those failures take effect first."""
        if not 0.0 <= rate <= 1.0 or not 0.0 <= lost_fraction <= 1.0:
            raise ValueError(f"rate {rate} and lost_fraction {lost_fraction} must be between 0 and 1")
        with self._lock:
            for name in _names(method):
                self._random[name] = (rate, tuple(codes), lost_fraction, random.Random(seed))
            self.planned = True

    def clear(self) -> None:
        """No more faults (the counters stay)."""
        with self._lock:
            self._queued.clear()
            self._random.clear()
            self.planned = False

    def around(self, method: str, call: Callable[..., T], *args: Any) -> T:
        """Make one call of ``method``, ``call(*args)``, with its fault, if any: failing before it runs,
        or after it has taken effect for a lost response."""
        fault = self.decide(method)
        if fault is not None and not fault.lost:
            raise fault.exception()
        result = call(*args)
        if fault is not None:
            raise fault.exception()
        return result

    def decide(self, method: str) -> Fault | None:
        """The fault for this call of ``method``, if any (consumed)."""
        if not self._queued and not self._random:  # the usual case: no faults planned at all
            return None
        with self._lock:
            queued = self._queued.get(method)
            fault = queued.popleft() if queued else None
            if fault is None and method in self._random:
                rate, codes, lost_fraction, rng = self._random[method]
                if rng.random() < rate:
                    code = codes[rng.randrange(len(codes))]
                    fault = Fault(code, f"injected fault: {code.name}", rng.random() < lost_fraction)
            if fault is not None:
                self.injected[method] += 1
                if fault.lost:
                    self.lost[method] += 1
            return fault


def _names(method: str | Iterable[str]) -> list[str]:
    return [method] if isinstance(method, str) else list(method)
