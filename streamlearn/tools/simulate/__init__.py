"""Seeded, event-time payment traffic with labelled fraud patterns and a drift point (no Kafka)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamlearn.tools.simulate.events import (
    DEFAULT_START_MS,
    DRIFTED_FEATURES,
    FRAUD_DRIFTED_FEATURES,
    OutcomeDelays,
    SimEvent,
    outcome_of,
    resolve_drift,
)
from streamlearn.tools.simulate.simulator import Simulator

__all__ = [
    "DEFAULT_START_MS",
    "DRIFTED_FEATURES",
    "FRAUD_DRIFTED_FEATURES",
    "OutcomeDelays",
    "SimEvent",
    "Simulator",
    "generate",
    "generate_batch",
    "outcome_of",
    "resolve_drift",
]


def generate(
    start_ms: int,
    *,
    count: int | None = None,
    until_ms: int | None = None,
    rate_per_s: float | None = None,
    seed: int = 7,
    cards: int = 5000,
    merchants: int = 500,
    fraud_rate: float = 0.005,
    drift_at: float | None = None,
    outcome_delay_s: float | None = None,
    diurnal: bool = True,
) -> Iterator[SimEvent]:
    """Payments in event-time order from start_ms, for count events or until until_ms.

    rate_per_s defaults to the population's natural pace (cards x 3 payments a day);
    drift_at is a fraction of the run (of count, else of the time span) or an event index;
    outcome_delay_s rescales the label delays (None: 1-3 days legit, 1-14 days fraud).
    """
    if count is None and until_ms is None:
        raise ValueError("generate() needs count or until_ms (use Simulator for endless runs)")
    delays = OutcomeDelays.scaled(outcome_delay_s) if outcome_delay_s is not None else None
    sim = Simulator(
        seed=seed, cards=cards, merchants=merchants, fraud_rate=fraud_rate, delays=delays
    )
    index, time_ms = resolve_drift(drift_at, count=count, start_ms=start_ms, until_ms=until_ms)
    sim.set_drift(index=index, time_ms=time_ms)
    return sim.events(
        start_ms, rate_per_s=rate_per_s, count=count, until_ms=until_ms, diurnal=diurnal
    )


def generate_batch(
    n: int,
    *,
    seed: int = 7,
    start_ms: int = DEFAULT_START_MS,
    rate_per_s: float | None = None,
    fraud_rate: float = 0.005,
    drift_at: float | None = None,
    cards: int = 5000,
    merchants: int = 500,
) -> list[tuple[dict[str, Any], bool]]:
    """n payments as (transaction dict, is_fraud), for tests and benchmarks.

    Deterministic in its arguments; with drift_at=None a shorter batch is a prefix of a
    longer one. drift_at <= 1 is a fraction of n, a larger value the index of the first
    drifted event.
    """
    return [
        (e.transaction, e.is_fraud)
        for e in generate(
            start_ms,
            count=n,
            rate_per_s=rate_per_s,
            seed=seed,
            cards=cards,
            merchants=merchants,
            fraud_rate=fraud_rate,
            drift_at=drift_at,
        )
    ]
