"""Time as the contract carries it: epoch milliseconds (Avro timestamp-millis) and UTC datetimes."""

from __future__ import annotations

import datetime as dt
import time

DAY_S = 86_400.0
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def utc(ms: float) -> dt.datetime:
    """An epoch-milliseconds time as an aware UTC datetime (what ClickHouse columns take)."""
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC)


def to_ms(value: dt.datetime) -> int:
    """An aware (or naive UTC) datetime as epoch milliseconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return int(time.time() * 1000)
