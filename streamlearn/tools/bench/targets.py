"""Issue 9's "Done when" targets beside the measured figures (pure): PASS, MISS or n/a."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from streamlearn.tools.bench.figures import fmt, pct, ratio

# The targets, as the issue states them.
SHARE_OF_FAUST = 0.60
WORKER_FLOOR = 10_000.0  # events/s per worker ...
WHERE_FAUST_REACHES = 16_700.0  # ... on a machine where bare Faust reaches this
SUSTAINABLE_SHARE = 0.50
LATENCY_P99_MS = 25.0
MIXED_P99_MS = 50.0
BACKLOG_PER_S = 5_000.0
BACKLOG_P99_MS = 50.0


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    target: str
    measured: str
    status: str  # PASS, MISS or n/a


def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def _at_most(value: float, limit: float) -> bool | None:
    return None if math.isnan(value) else value <= limit  # inf (never came) is a MISS


def _at_least(value: float, limit: float) -> bool | None:
    return None if math.isnan(value) else value >= limit


def evaluate(result: dict[str, Any]) -> list[Target]:
    """One row per target; a figure the run did not produce is n/a, never a PASS."""
    return [*_capacity(result), *_under_load(result)]


def _capacity(result: dict[str, Any]) -> list[Target]:
    rates = {k: float(v.get("per_s", math.nan)) for k, v in result["throughput"].items()}
    worker, faust = rates.get("worker", math.nan), rates.get("faust", math.nan)
    share = ratio(worker, faust)
    sustainable = float(result.get("sustainable_rate") or 0.0)
    floor_applies = math.isfinite(faust) and faust >= WHERE_FAUST_REACHES
    version = result.get("model_version") or "none"
    none_served = int(result.get("served_by_none", 0))
    return [
        Target(
            "real champion",
            "a LightGBM model from `retrain` serves every timed prediction",
            f"{version}, {none_served:,} served by none",
            _status(version != "none" and none_served == 0),
        ),
        Target(
            "throughput vs bare Faust",
            f">= {SHARE_OF_FAUST:.0%} of bare Faust",
            f"{fmt(worker)} vs {fmt(faust)} ev/s ({pct(share)})",
            _status(_at_least(share, SHARE_OF_FAUST)),
        ),
        Target(
            "throughput per worker",
            f">= {WORKER_FLOOR:,.0f} ev/s where bare Faust >= {WHERE_FAUST_REACHES:,.0f}",
            f"{fmt(worker)} ev/s (bare Faust {fmt(faust)})",
            _status(_at_least(worker, WORKER_FLOOR) if floor_applies else None),
        ),
        Target(
            "sustainable rate",
            f">= {SUSTAINABLE_SHARE:.0%} of the batch figure, p99 <= {LATENCY_P99_MS:g} ms",
            f"{fmt(sustainable)} ev/s ({pct(ratio(sustainable, worker))} of {fmt(worker)})",
            _status(_at_least(ratio(sustainable, worker), SUSTAINABLE_SHARE)),
        ),
    ]


def _under_load(result: dict[str, Any]) -> list[Target]:
    lat, mixed, backlog = result["latency_ms"], result["mixed"], result["backlog"]
    return [
        Target(
            "latency",
            f"p99 <= {LATENCY_P99_MS:g} ms at {fmt(lat['rate'])} ev/s",
            f"p99 {fmt(lat['p99'], 1)} ms (p50 {fmt(lat['p50'], 1)}, max {fmt(lat['max'], 1)})",
            _status(_at_most(lat["p99"], LATENCY_P99_MS)),
        ),
        Target(
            "mixed load latency",
            f"p99 <= {MIXED_P99_MS:g} ms",
            f"p99 {fmt(mixed['p99_ms'], 1)} ms (p50 {fmt(mixed['p50_ms'], 1)})",
            _status(_at_most(mixed["p99_ms"], MIXED_P99_MS)),
        ),
        Target(
            "mixed load learning",
            "every outcome sent is learned",
            f"{fmt(mixed['learned'])} learned of {fmt(mixed['sent'])} sent",
            _status(mixed["sent"] > 0 and mixed["learned"] == mixed["sent"]),
        ),
        Target(
            "backlog learning",
            f">= {BACKLOG_PER_S:,.0f} outcomes/s",
            f"{fmt(backlog['learned_per_s'])} /s",
            _status(_at_least(backlog["learned_per_s"], BACKLOG_PER_S)),
        ),
        Target(
            "backlog latency",
            f"p99 <= {BACKLOG_P99_MS:g} ms while it is learned",
            f"p99 {fmt(backlog['p99_ms'], 1)} ms",
            _status(_at_most(backlog["p99_ms"], BACKLOG_P99_MS)),
        ),
    ]
