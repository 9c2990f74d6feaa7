"""The bench's arithmetic (pure): latency percentiles, per-slice tails, rates from counters."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

NAN = float("nan")
_NEVER = 1e15  # ms: later than any measured latency


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of one run's latencies, in ms."""

    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values_ms: Sequence[float] | np.ndarray, missing: int = 0) -> Latency:
        """Percentiles of the latencies measured, where each of `missing` (never came)
        counts as infinitely late: a tail they reach is inf, not the slowest that came."""
        arr = np.asarray(values_ms, dtype=float)
        if arr.size + missing == 0:
            return cls(0, NAN, NAN, NAN)
        # A finite stand-in for inf: numpy's interpolation would turn inf x 0 into NaN.
        full = np.concatenate([arr, np.full(missing, _NEVER)])
        p50, p99, top = (float(v) for v in np.percentile(full, [50, 99, 100]))
        return cls(int(full.size), *(math.inf if v >= _NEVER else v for v in (p50, p99, top)))


@dataclass(frozen=True, slots=True)
class Slice:
    """The tail of one time slice of a run (by send time, seconds from its start)."""

    start_s: float
    end_s: float
    count: int
    p99_ms: float


def slices(
    sent_s: Sequence[float] | np.ndarray,
    latency_ms: Sequence[float] | np.ndarray,
    width_s: float = 5.0,
) -> list[Slice]:
    """p99 per `width_s` slice of send time (relative to the run's start), empty ones left out.

    Where the tail sits tells a warm-up spike from a steady state: one p99 hides that.
    """
    sent = np.asarray(sent_s, dtype=float)
    lat = np.asarray(latency_ms, dtype=float)
    if sent.size != lat.size:
        raise ValueError(f"{sent.size} send times for {lat.size} latencies")
    if sent.size == 0:
        return []
    index = np.floor(sent / width_s).astype(np.int64)
    out = []
    for k in np.unique(index):
        mask = index == k
        out.append(
            Slice(
                float(k * width_s),
                float((k + 1) * width_s),
                int(mask.sum()),
                float(np.percentile(lat[mask], 99)),
            )
        )
    return out


def span_rate(count: int, first: float, last: float) -> float:
    """Events per second between the first and the last event's time (seconds)."""
    if count < 2 or last <= first:
        return NAN
    return count / (last - first)


def counter_rate(samples: Sequence[tuple[float, int]]) -> float:
    """Per second between the first and the last change of a sampled counter.

    samples are (time s, value) in time order, the first one taken before counting began.
    Idle time before the first change and after the last one is not counted. If everything
    happened between two samples (one change), the rate over that interval is returned: a
    lower bound, since counting took at most that long.
    """
    changes = [(t, n) for i, (t, n) in enumerate(samples) if i == 0 or n != samples[i - 1][1]]
    if len(changes) < 2:
        return NAN
    if len(changes) == 2:
        (t0, n0), (t1, n1) = changes
    else:
        (t0, n0), (t1, n1) = changes[1], changes[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 else NAN


def ratio(numerator: float, denominator: float) -> float:
    if not denominator or math.isnan(denominator) or math.isnan(numerator):
        return NAN
    return numerator / denominator


def served_none(versions: Mapping[str, int]) -> int:
    """How many predictions carried no model ("none": served before any champion)."""
    return int(versions.get("none", 0))


def fmt(value: float | int | None, digits: int = 0) -> str:
    """A figure for the tables: thousands separators, '-' for a missing one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "never"  # a latency whose prediction did not come
    return f"{value:,.{digits}f}"


def pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0%}"
