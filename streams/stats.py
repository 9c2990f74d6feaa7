"""Counters and latency samples a worker exposes on /status (plain data, no I/O)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np


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
    replayed_transactions: int = 0
    batches: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=20_000))
    process_ms: deque = field(default_factory=lambda: deque(maxlen=2_000))
    _rate_marks: deque = field(default_factory=lambda: deque(maxlen=120))

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

    def latency(self) -> dict[str, float]:
        if not self.latencies_ms:
            return {"p50_ms": float("nan"), "p99_ms": float("nan")}
        arr = np.fromiter(self.latencies_ms, dtype=float)
        return {"p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99))}
