"""Conversions between protobuf well-known types and Python values, on raw protobuf messages."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_datetime(timestamp: Any) -> datetime | None:
    """An aware UTC datetime, or None for an unset (zero) timestamp."""
    if not timestamp.seconds and not timestamp.nanos:
        return None
    return _EPOCH + timedelta(seconds=timestamp.seconds, microseconds=timestamp.nanos // 1000)


def to_seconds(timestamp_or_duration: Any) -> float:
    return float(timestamp_or_duration.seconds) + float(timestamp_or_duration.nanos) / 1e9


def set_seconds(timestamp: Any, seconds: float) -> None:
    """Fill a Timestamp from float seconds since the epoch."""
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, 0
    timestamp.seconds = whole
    timestamp.nanos = nanos


def to_timedelta(duration: Any) -> timedelta:
    return timedelta(seconds=duration.seconds, microseconds=duration.nanos / 1000)


def set_timedelta(target: Any, value: timedelta) -> None:
    total_us = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    sign = -1 if total_us < 0 else 1
    whole, micros = divmod(abs(total_us), 1_000_000)
    target.seconds = sign * whole
    target.nanos = sign * micros * 1000
