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
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=50_000))
    process_ms: deque = field(default_factory=lambda: deque(maxlen=2_000))
    _rate_marks: deque = field(default_factory=lambda: deque(maxlen=120))
    # Inference cost per model version since start: CPU seconds spent in LightGBM scoring,
    # and rows scored (the shadow's too: it costs as much as the champion).
    inference_cpu_s: dict[str, float] = field(default_factory=dict)
    inference_count: dict[str, int] = field(default_factory=dict)

    def record_latencies(self, now_s: float, latencies_ms: Any, fetched_ms: Any) -> None:
        """Each event of a slice scored at now_s: its publish-to-score latency, and the part
        of it spent before the scorer got it (publish to handed out by the consumer)."""
        self.latencies_ms.extend(
            (now_s, float(ms), float(f)) for ms, f in zip(latencies_ms, fetched_ms, strict=True)
        )

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
        since = time.time() - window_s
        recent = np.asarray([(ms, f) for t, ms, f in self.latencies_ms if t >= since])
        if not len(recent):
            nan = float("nan")
            keys = ("p50_ms", "p99_ms", "fetch_p50_ms", "fetch_p99_ms")
            return {**dict.fromkeys(keys, nan), "window_s": window_s}
        (p50, f50), (p99, f99) = np.percentile(recent, [50, 99], axis=0)
        return {
            "p50_ms": float(p50),
            "p99_ms": float(p99),
            "fetch_p50_ms": float(f50),
            "fetch_p99_ms": float(f99),
            "window_s": window_s,
        }
