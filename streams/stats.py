"""Counters and latency samples a worker exposes on /status (plain data, no I/O)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LATENCY_WINDOW_S = 30.0
# What the learners have done with outcomes: saved in their checkpoint and restored with them,
# so after a crash they continue from what the restored learners had learned.
LEARNING_COUNTERS = (
    "learned",
    "early_outcomes",
    "duplicate_outcomes",
    "conflicting_outcomes",
    "expired_outcomes",
    "unknown_outcomes",
)


class LatencyRing:
    """The last `size` events' (scored at, publish-to-score ms, publish-to-handed-out ms), in
    numpy arrays: the status refresh reads 30 s of them every second, and building that from
    Python tuples held the loop ~20-40 ms each time at 1,000 events/s (py-spy, 7% of it)."""

    def __init__(self, size: int = 50_000) -> None:
        self.at = np.zeros(size)
        self.total = np.zeros(size)
        self.fetch = np.zeros(size)
        self.written = 0

    def add(self, now_s: float, total_ms: Any, fetch_ms: Any) -> None:
        size = len(self.at)
        total = np.asarray(total_ms, dtype=np.float64)[-size:]
        fetch = np.asarray(fetch_ms, dtype=np.float64)[-size:]
        where = (self.written + np.arange(len(total))) % size
        self.at[where], self.total[where], self.fetch[where] = now_s, total, fetch
        self.written += len(total)

    def since(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(total, fetch) of the events scored at or after t."""
        held = min(self.written, len(self.at))
        recent = self.at[:held] >= t
        return self.total[:held][recent], self.fetch[:held][recent]


@dataclass
class WorkerStats:
    started_at: float = field(default_factory=time.time)
    transactions: int = 0
    predictions: int = 0
    outcomes: int = 0
    learned: int = 0
    early_outcomes: int = 0
    duplicate_outcomes: int = 0
    conflicting_outcomes: int = 0
    expired_outcomes: int = 0  # known after the label horizon: stored, not learned
    unknown_outcomes: int = 0  # their transaction never came: stored, not learned
    replayed_transactions: int = 0
    foreign_state_dropped: int = 0  # state entries of partitions moved to another worker
    batches: int = 0
    # (wall time, latency) of recent events: percentiles cover the last LATENCY_WINDOW_S only,
    # so a replayed backlog does not hide what live traffic sees now.
    latencies_ms: LatencyRing = field(default_factory=LatencyRing)
    process_ms: deque = field(default_factory=lambda: deque(maxlen=2_000))
    _rate_marks: deque = field(default_factory=lambda: deque(maxlen=120))
    # Inference cost per model version since start: CPU seconds spent in LightGBM scoring,
    # and rows scored (the shadow's too: it costs as much as the champion).
    inference_cpu_s: dict[str, float] = field(default_factory=dict)
    inference_count: dict[str, int] = field(default_factory=dict)

    def record_latencies(self, now_s: float, latencies_ms: Any, fetched_ms: Any) -> None:
        """Each event of a slice scored at now_s: its publish-to-score latency, and the part
        of it spent before the scorer got it (publish to handed out by the consumer)."""
        self.latencies_ms.add(now_s, latencies_ms, fetched_ms)

    def record_inference(self, version: str, cpu_s: float, rows: int) -> None:
        self.inference_cpu_s[version] = self.inference_cpu_s.get(version, 0.0) + cpu_s
        self.inference_count[version] = self.inference_count.get(version, 0) + rows

    def learning_counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in LEARNING_COUNTERS}

    def restore_learning_counters(self, counters: dict[str, int]) -> None:
        for name in LEARNING_COUNTERS:
            setattr(self, name, int(counters.get(name, 0)))

    def mark(self) -> None:
        self._rate_marks.append((time.time(), self.transactions))

    def rate(self) -> float:
        """Transactions per second over the last few seconds."""
        now = time.time()
        marks = [m for m in self._rate_marks if now - m[0] <= 10]
        if len(marks) < 2:
            return 0.0
        (t0, n0), (t1, n1) = marks[0], marks[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def latency(self, window_s: float = LATENCY_WINDOW_S) -> dict[str, float]:
        """p50/p99 in ms from publish to score over events scored in the last window_s, and
        of its first part, publish to handed out (`fetch_*`: broker, consumer thread, loop)."""
        total, fetch = self.latencies_ms.since(time.time() - window_s)
        if not len(total):
            nan = float("nan")
            keys = ("p50_ms", "p99_ms", "fetch_p50_ms", "fetch_p99_ms")
            return {**dict.fromkeys(keys, nan), "window_s": window_s}
        p50, p99 = np.percentile(total, [50, 99])
        f50, f99 = np.percentile(fetch, [50, 99])
        return {
            "p50_ms": float(p50),
            "p99_ms": float(p99),
            "fetch_p50_ms": float(f50),
            "fetch_p99_ms": float(f99),
            "window_s": window_s,
        }
