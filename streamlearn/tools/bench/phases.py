"""The measured phases after the champion serves: the worker's batch throughput, latency at
a steady rate, the sustainable rate, production's mixed load, and a backlog of outcomes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamlearn.foundation.clock import now_ms
from streamlearn.foundation.errors import StreamlearnError
from streamlearn.tools.bench.ceilings import Throughput
from streamlearn.tools.bench.figures import counter_rate
from streamlearn.tools.bench.load import (
    PredictionWatcher,
    StatusPoller,
    encode_outcomes,
    produce_all,
    send_paced,
)
from streamlearn.tools.bench.paced import Context, PacedResult, paced_run
from streamlearn.tools.bench.search import Probe, RateSearch
from streamlearn.tools.bench.side_load import Analyst, Retrain
from streamlearn.tools.bench.targets import LATENCY_P99_MS

GRACE_S = 5.0  # after the last event is sent, how long its prediction may take
PAUSE_S = 2.0  # between runs: what one left in flight does not land in the next
LEARN_WAIT_S = 60.0  # after the load, how long the learning thread may take to catch up


def worker_throughput(
    ctx: Context, ids: list[str], start: dict[int, int], timeout_s: float
) -> tuple[Throughput, dict[str, int]]:
    """The restarted worker's rate on the preload, from its first to its last `scored_at`.

    Predictions are read after the worker is done (its counter is polled meanwhile), so the
    bench takes no CPU from it while it runs.
    """
    ctx.worker.wait_for("transactions", len(ids), timeout=timeout_s)
    watcher = PredictionWatcher(ctx.settings, set(ids), start=start)
    try:
        missing = watcher.wait(120)
    finally:
        watcher.close()
    if missing:
        raise StreamlearnError(f"bench: {missing:,} of {len(ids):,} preloaded predictions missing")
    scored = [a.scored_at_ms for a in watcher.arrivals.values()]
    versions: dict[str, int] = {}
    for a in watcher.arrivals.values():
        versions[a.model_version] = versions.get(a.model_version, 0) + 1
    ctx.versions.update(versions)
    ctx.scored(ids)
    return (
        Throughput(
            "worker",
            "streamlearn worker, end to end",
            len(ids),
            (max(scored) - min(scored)) / 1000,
            "decode, features, LightGBM + River, predictions acked, ClickHouse rows, changelog",
        ),
        versions,
    )


def latency(ctx: Context, rate: float, seconds: float) -> PacedResult:
    time.sleep(PAUSE_S)
    return paced_run(ctx, rate, seconds, grace_s=GRACE_S)


@dataclass
class ProbeRun:
    probe: Probe
    result: PacedResult
    held: bool
    why: str


def holds(result: PacedResult, p99_ms: float = LATENCY_P99_MS) -> tuple[bool, str]:
    """Did the worker hold this rate: the tail within target and every prediction in time?

    A run the bench's own producer could not pace (5% short) does not count as held.
    """
    if result.achieved_rate < 0.95 * result.rate:
        return False, f"producer reached only {result.achieved_rate:,.0f}/s"
    if result.late:
        return False, f"{result.late:,} predictions not back within {GRACE_S:g}s of the end"
    if not result.latency.p99 <= p99_ms:
        return False, f"p99 {result.latency.p99:,.1f} ms"
    return True, f"p99 {result.latency.p99:,.1f} ms"


def sustainable(
    ctx: Context, search: RateSearch, on_probe: Callable[[ProbeRun], None]
) -> list[ProbeRun]:
    """Short probes upward from a share of the batch figure, the best confirmed at length."""
    runs = []
    while (probe := search.next()) is not None:
        time.sleep(PAUSE_S)
        result = paced_run(ctx, probe.rate, probe.seconds, grace_s=GRACE_S)
        held, why = holds(result)
        search.record(held)
        runs.append(ProbeRun(probe, result, held, why))
        on_probe(runs[-1])
    return runs


@dataclass
class Mixed:
    result: PacedResult
    sent: int
    learned: int
    learn_wait_s: float
    retrain: dict[str, Any]
    analyst: dict[str, Any]
    status_polls: int
    status_errors: int
    status_slowest_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": self.result.latency.p50,
            "p99_ms": self.result.latency.p99,
            "sent": self.sent,
            "learned": self.learned,
        }

    def detail(self) -> dict[str, Any]:
        return {
            "transactions": self.result.as_dict(),
            "learn_wait_s": round(self.learn_wait_s, 1),
            "retrain": self.retrain,
            "analyst_queries": self.analyst,
            "status_polls": self.status_polls,
            "status_errors": self.status_errors,
            "status_slowest_ms": round(self.status_slowest_ms, 1),
        }


def mixed(ctx: Context, rate: float, outcome_rate: float, seconds: float) -> Mixed:
    """Production's load at once: transactions, outcomes for scored ones, a retrain through
    the worker, an analyst's aggregate every 5 s, /status every second."""
    time.sleep(PAUSE_S)
    outcomes = encode_outcomes(ctx.take_labels(int(outcome_rate * seconds)), now_ms())
    learned_before = int(ctx.worker.status()["learned"])
    poller = StatusPoller(ctx.worker.status, interval_s=1.0)
    analyst, retrain = Analyst(ctx.settings), Retrain(ctx.settings)
    sender = threading.Thread(
        target=send_paced,
        args=(ctx.settings, ctx.settings.topic("outcomes"), outcomes, outcome_rate),
        name="bench-outcomes",
        daemon=True,
    )

    def side_loads() -> None:
        for load in (poller, analyst, retrain, sender):
            load.start()

    try:
        result = paced_run(ctx, rate, seconds, grace_s=GRACE_S, on_start=side_loads)
        sender.join(GRACE_S + 30)
    finally:
        analyst.stop()
        poller.stop()
    t0 = time.monotonic()
    learned = _learned_since(ctx, learned_before, len(outcomes), LEARN_WAIT_S)
    return Mixed(
        result,
        len(outcomes),
        learned,
        time.monotonic() - t0,
        retrain.finish(),
        analyst.summary(),
        len(poller.samples),
        poller.errors,
        poller.slowest_s * 1000,
    )


@dataclass
class Backlog:
    result: PacedResult
    outcomes: int
    learned: int
    learned_per_s: float
    produce_s: float
    learned_samples: list[tuple[float, int]] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"learned_per_s": self.learned_per_s, "p99_ms": self.result.latency.p99}

    def detail(self) -> dict[str, Any]:
        return {
            "outcomes": self.outcomes,
            "learned": self.learned,
            "outcomes_put_in_s": round(self.produce_s, 2),
            "transactions": self.result.as_dict(),
        }


def backlog(ctx: Context, n: int, rate: float, min_s: float, max_s: float) -> Backlog:
    """n outcomes put on the topic at once while scoring at `rate`; scoring goes on until
    they are learned (at least min_s, at most max_s), so its p99 covers the whole backlog."""
    time.sleep(PAUSE_S)
    outcomes = encode_outcomes(ctx.take_labels(n), now_ms())
    learned_before = int(ctx.worker.status()["learned"])
    poller = StatusPoller(ctx.worker.status, interval_s=0.2)
    stop = threading.Event()
    produced: dict[str, float] = {}

    def flood() -> None:
        started = time.monotonic()
        time.sleep(PAUSE_S)  # scoring is under way when the backlog lands
        produced["s"] = produce_all(ctx.settings, ctx.settings.topic("outcomes"), outcomes)
        while time.monotonic() - started < max_s:
            samples = poller.counter("learned")
            if samples and samples[-1][1] - learned_before >= n:
                break
            time.sleep(0.2)
        time.sleep(max(0.0, min_s - (time.monotonic() - started)))
        stop.set()

    feeder = threading.Thread(target=flood, name="bench-backlog", daemon=True)

    def start() -> None:
        poller.start()
        feeder.start()

    try:
        result = paced_run(ctx, rate, max_s, grace_s=GRACE_S, stop=stop, on_start=start)
        feeder.join(30)
    finally:
        poller.stop()
    learned = _learned_since(ctx, learned_before, n, LEARN_WAIT_S)
    samples = poller.counter("learned")
    return Backlog(result, n, learned, counter_rate(samples), produced.get("s", 0.0), samples)


def _learned_since(ctx: Context, before: int, wanted: int, timeout_s: float) -> int:
    """The worker's learned count above `before`, waiting up to timeout_s for `wanted`."""
    deadline = time.monotonic() + timeout_s
    while True:
        learned = int(ctx.worker.status()["learned"]) - before
        if learned >= wanted or time.monotonic() >= deadline:
            return learned
        time.sleep(0.5)
