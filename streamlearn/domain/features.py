"""Event-time features of a transaction from per-card and per-merchant state (pure functions).

Windows are exponentially time-decayed aggregates with time constants of 1 h, 1 d, 7 d and
30 d: O(1) state per key, exact and deterministic in event time (a replay of last month gives
the same features as live traffic), and bounded memory however busy a merchant is. The
features of an event describe the history *before* it; the event is then added to the state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

WINDOWS: tuple[tuple[str, float], ...] = (
    ("1h", 3_600_000.0),
    ("1d", 86_400_000.0),
    ("7d", 604_800_000.0),
    ("30d", 2_592_000_000.0),
)
_TAUS = tuple(tau for _, tau in WINDOWS)
_NW = len(WINDOWS)
CHANNELS = {"pos": 0.0, "ecom": 1.0, "atm": 2.0, "moto": 3.0}
RECENT_MERCHANTS = 16
NO_PREVIOUS_S = 90 * 86_400.0
# Exponential moving average weight of the card's usual amount (about the last 20 payments).
USUAL_ALPHA = 0.05

FEATURE_NAMES: tuple[str, ...] = (
    "amount",
    "log_amount",
    "hour_of_day",
    "day_of_week",
    "channel_code",
    *(f"card_count_{w}" for w, _ in WINDOWS),
    *(f"card_amount_sum_{w}" for w, _ in WINDOWS),
    "card_amount_mean_30d",
    "card_log_seconds_since_prev",
    "card_amount_ratio",
    "card_new_merchant",
    "card_tx_total",
    *(f"merchant_count_{w}" for w, _ in WINDOWS),
    "merchant_amount_mean_30d",
    "merchant_amount_ratio",
    "merchant_fraud_rate",
    "merchant_labeled_30d",
)
FEATURE_VERSION = "v1"


def new_card_state() -> list[Any]:
    """[last_t, counts x4, sums x4, usual_amount, total, recent merchants, applied ids].

    The worker appends [partition, offset] of the last event applied, to spot Kafka replays.
    """
    return [None, [0.0] * _NW, [0.0] * _NW, None, 0, [], []]


def new_merchant_state() -> list[Any]:
    """[last_t, counts x4, sums x4]."""
    return [None, [0.0] * _NW, [0.0] * _NW]


def _decayed(
    last_t: float | None, counts: list[float], sums: list[float], t: float
) -> tuple[float, list[float], list[float]]:
    """Counts and sums decayed to time max(t, last_t); returns (ref_t, counts, sums)."""
    if last_t is None:
        return t, list(counts), list(sums)
    ref = t if t > last_t else last_t
    dt = ref - last_t
    if dt == 0:
        return ref, list(counts), list(sums)
    f = [math.exp(-dt / tau) for tau in _TAUS]
    return (
        ref,
        [c * k for c, k in zip(counts, f, strict=True)],
        [s * k for s, k in zip(sums, f, strict=True)],
    )


def _add(ref: float, counts: list[float], sums: list[float], t: float, amount: float) -> None:
    """Add one event at time t to aggregates held at ref >= t (late events count decayed)."""
    if t >= ref:
        for i in range(_NW):
            counts[i] += 1.0
            sums[i] += amount
        return
    for i, tau in enumerate(_TAUS):
        k = math.exp(-(ref - t) / tau)
        counts[i] += k
        sums[i] += amount * k


def compute(
    txn: dict[str, Any],
    card: list[Any] | None,
    merchant: list[Any] | None,
    merchant_fraud: tuple[float, float] = (0.0, 0.0),
) -> tuple[list[float], list[Any], list[Any]]:
    """Features of one transaction, and the card and merchant states after it.

    merchant_fraud is (smoothed fraud rate, labeled count) from outcomes known before the
    transaction's event time (see streams.merchant_risk).
    """
    card = card or new_card_state()
    merchant = merchant or new_merchant_state()
    t = float(txn["event_time"])
    amount = float(txn["amount"])
    merchant_id = txn["merchant_id"]

    c_last, c_counts, c_sums, usual, total, recent, applied = card[:7]
    c_ref, c_counts, c_sums = _decayed(c_last, c_counts, c_sums, t)
    m_last, m_counts, m_sums = merchant
    m_ref, m_counts, m_sums = _decayed(m_last, m_counts, m_sums, t)

    since = (t - c_last) / 1000.0 if c_last is not None and t >= c_last else None
    card_mean = c_sums[3] / c_counts[3] if c_counts[3] > 1e-9 else amount
    merch_mean = m_sums[3] / m_counts[3] if m_counts[3] > 1e-9 else amount
    seconds = (int(t) // 1000) % 86_400
    features = [
        amount,
        math.log1p(amount),
        seconds / 3600.0,
        float(((int(t) // 86_400_000) + 3) % 7),  # 1970-01-01 was a Thursday
        CHANNELS.get(txn.get("channel") or "", 4.0),
        *c_counts,
        *c_sums,
        card_mean,
        math.log1p(since if since is not None else NO_PREVIOUS_S),
        amount / (usual + 1.0) if usual is not None else 1.0,
        0.0 if merchant_id in recent else 1.0,
        float(min(total, 10_000)),
        *m_counts,
        merch_mean,
        amount / (merch_mean + 1.0),
        merchant_fraud[0],
        merchant_fraud[1],
    ]

    _add(c_ref, c_counts, c_sums, t, amount)
    _add(m_ref, m_counts, m_sums, t, amount)
    usual = amount if usual is None else usual + USUAL_ALPHA * (amount - usual)
    if merchant_id in recent:
        recent = [m for m in recent if m != merchant_id]
    recent = [*recent[-(RECENT_MERCHANTS - 1) :], merchant_id]
    new_card = [c_ref, c_counts, c_sums, usual, total + 1, recent, applied]
    new_merchant = [m_ref, m_counts, m_sums]
    return features, new_card, new_merchant


def as_dict(values: Sequence[float]) -> dict[str, float]:
    """Name the values of a feature vector."""
    return dict(zip(FEATURE_NAMES, values, strict=True))
