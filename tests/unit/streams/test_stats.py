"""The worker's own latency view: publish to score, and its fetch part, over a recent window."""

from __future__ import annotations

import math
import time

import numpy as np

from streamlearn.streams.stats import LatencyRing, WorkerStats


def test_latency_splits_out_the_fetch_and_forgets_old_events() -> None:
    stats = WorkerStats()
    now = time.time()
    stats.record_latencies(now - 120, np.array([5_000.0]), np.array([4_900.0]))  # too old
    total = np.arange(1.0, 101.0)  # 1..100 ms publish to score
    stats.record_latencies(now, total, total - 1.0)  # 1 ms of each spent in the scorer
    view = stats.latency(window_s=30)
    assert view["p50_ms"] == np.percentile(total, 50)
    assert view["p99_ms"] == np.percentile(total, 99)
    assert view["fetch_p50_ms"] == np.percentile(total - 1.0, 50)
    assert view["fetch_p99_ms"] == np.percentile(total - 1.0, 99)
    assert view["window_s"] == 30


def test_latency_without_recent_events_is_nan() -> None:
    view = WorkerStats().latency()
    assert all(math.isnan(view[k]) for k in ("p50_ms", "p99_ms", "fetch_p50_ms", "fetch_p99_ms"))


def test_the_ring_keeps_the_newest_events_when_it_wraps() -> None:
    ring = LatencyRing(size=5)
    ring.add(1.0, np.arange(3.0), np.arange(3.0))
    ring.add(2.0, np.arange(10.0, 18.0), np.arange(10.0, 18.0) - 1)  # more than it holds
    total, fetch = ring.since(0.0)
    assert sorted(total) == [13.0, 14.0, 15.0, 16.0, 17.0]
    assert sorted(fetch) == [12.0, 13.0, 14.0, 15.0, 16.0]
    ring.add(3.0, np.array([99.0]), np.array([98.0]))
    assert list(ring.since(2.5)[0]) == [99.0] and len(ring.since(0.0)[0]) == 5
