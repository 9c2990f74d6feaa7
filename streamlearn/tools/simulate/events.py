"""The simulator's records: a payment with its ground truth, label delays, the drift point.

Also the features the drift moves, which tests and the report check against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

DEFAULT_START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z
DAY_S = 86_400.0
# Features (streams.features) whose distribution shifts for all traffic at the drift: the
# first three at once (amounts x1.35, more online payments), the 30-day means over weeks.
DRIFTED_FEATURES: tuple[str, ...] = (
    "amount",
    "log_amount",
    "channel_code",
    "card_amount_mean_30d",
    "merchant_amount_mean_30d",
)
# Features whose distribution in the fraud class changes at the drift (concept drift).
FRAUD_DRIFTED_FEATURES: tuple[str, ...] = (
    "amount",
    "card_amount_ratio",
    "card_new_merchant",
    "channel_code",
    "hour_of_day",
    "card_count_1h",
    "card_log_seconds_since_prev",
    "merchant_fraud_rate",
)


class SimEvent(NamedTuple):
    """One simulated payment and its ground truth."""

    transaction: dict[str, Any]  # fields of the Transaction schema
    is_fraud: bool
    outcome_ms: int  # when the outcome (chargeback or confirmation) becomes known
    pattern: str  # "" when legitimate, else burst, amount, hour, merchant or drift
    index: int  # type: ignore[assignment]  # position in the stream; transaction_id(index)


@dataclass(frozen=True)
class OutcomeDelays:
    """How long after a payment its label becomes known, in seconds (uniform in [min, max])."""

    legit_min_s: float = 1 * DAY_S
    legit_max_s: float = 3 * DAY_S
    fraud_min_s: float = 1 * DAY_S
    fraud_max_s: float = 14 * DAY_S

    @classmethod
    def scaled(cls, seconds: float) -> OutcomeDelays:
        """The default shape with 1 day replaced by `seconds` (e.g. 5 s for a demo)."""
        return cls(seconds, 3 * seconds, seconds, 14 * seconds)


def outcome_of(event: SimEvent) -> dict[str, Any]:
    """The Outcome record of a simulated payment."""
    return {
        "transaction_id": event.transaction["transaction_id"],
        "is_fraud": event.is_fraud,
        "event_time": event.outcome_ms,
    }


def resolve_drift(
    drift_at: float | None,
    *,
    first_index: int = 0,
    count: int | None = None,
    start_ms: int | None = None,
    until_ms: int | None = None,
) -> tuple[int | None, int | None]:
    """(event index, event time ms) of the drift: drift_at <= 1 is a fraction of the run
    (of its count if given, else of its time span), a larger value an absolute event index."""
    if drift_at is None:
        return None, None
    if drift_at < 0:
        raise ValueError(f"drift_at must be >= 0, got {drift_at}")
    if drift_at > 1:
        return int(drift_at), None
    if count is not None:
        return first_index + round(drift_at * count), None
    if start_ms is not None and until_ms is not None:
        return None, int(start_ms + drift_at * (until_ms - start_ms))
    raise ValueError("drift_at as a fraction needs a bounded run (a count or an end time)")
