"""The retry schedule, the stop rule and the token bucket: pure functions of numbers."""

from __future__ import annotations

import math

__all__ = ["TokenBucket", "backoff", "burst_size_for", "retries_exhausted"]


def backoff(retry: int, *, min_backoff: float, max_backoff: float, max_doublings: int) -> float:
    """Seconds to wait before retry ``retry`` (0 for the first retry).

    The wait doubles from ``min_backoff`` while ``retry <= max_doublings``, then grows linearly by
    ``min_backoff * 2**max_doublings`` per retry, always capped at ``max_backoff``. With 10 s, 300 s and
    3 doublings: 10, 20, 40, 80, 160, 240, 300, 300...
    """
    # Exponents past ~1000 only make the wait larger than any max_backoff; capping them keeps 2.0**n finite.
    if retry <= max_doublings:
        delay = min_backoff * 2.0 ** min(retry, _MAX_EXPONENT)
    else:
        delay = min_backoff * 2.0 ** min(max_doublings, _MAX_EXPONENT) * (retry - max_doublings + 1)
    return min(delay, max_backoff)


_MAX_EXPONENT = 1000


def retries_exhausted(
    *, attempts: int, since_first: float, max_attempts: int, max_retry_duration: float
) -> bool:
    """True when both limits are used up: ``max_attempts`` (-1 unlimited) and ``max_retry_duration``
    (0 unlimited, which does not hold a task back once its attempts are used up)."""
    attempts_done = max_attempts != -1 and attempts >= max_attempts
    duration_done = max_retry_duration <= 0 or since_first >= max_retry_duration
    return attempts_done and duration_done


def burst_size_for(rate: float) -> int:
    """The bucket size the engine picks for a rate (the service chooses it; a second's worth, 1 to 100)."""
    return max(1, min(100, math.ceil(rate)))


# Times are floats near 1.8e9 s, exact to about a microsecond; a dispatch due "at" an instant is due.
_EPSILON = 1e-6


class TokenBucket:
    """A token bucket of ``size`` tokens refilled at ``rate`` per second; each dispatch takes one.

    Kept as the time the bucket will be full again (the generic cell rate algorithm), not as a float
    count of tokens, so repeated refills do not drift and a driver on virtual time can jump straight to
    the instant the next token arrives.
    """

    __slots__ = ("full_at", "rate", "size")

    def __init__(self, rate: float, size: int, now: float) -> None:
        self.rate = rate
        self.size = size
        self.full_at = now

    def reconfigure(self, rate: float, size: int, now: float) -> None:
        self.rate, self.size = rate, size
        self.full_at = min(self.full_at, now + size / rate)

    def take(self, now: float) -> bool:
        """Take a token if one is there."""
        if self.next_token_at(now) > now + _EPSILON:
            return False
        self.full_at = max(self.full_at, now) + 1.0 / self.rate
        return True

    def next_token_at(self, now: float) -> float:
        """When a token will be there (``now`` if one is)."""
        return max(now, self.full_at - (self.size - 1) / self.rate)
