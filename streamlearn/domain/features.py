"""Event-time features of a transaction from per-card and per-merchant state (pure functions).

Windows are exponentially time-decayed aggregates with time constants of 1 h, 1 d, 7 d and
30 d: O(1) state per key, exact and deterministic in event time (a replay of last month gives
the same features as live traffic), and bounded memory however busy a merchant is. Beside
them, a card's plain windows (count and mean amount over the last 1, 7 and 30 days) from its
own recent payments, and the merchant's fraud history from known outcomes. The features of an
event describe the history *before* it; the event is then added to the state.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
REPLAY_MEMORY = 8  # transaction ids per card remembered to spot an upstream resend
NO_PREVIOUS_S = 90 * 86_400.0
# Exponential moving average weight of the card's usual amount (about the last 20 payments).
USUAL_ALPHA = 0.05
# Days of known outcomes the merchant's fraud history looks back over (streams.merchant_risk).
HISTORY_WINDOWS: tuple[int, ...] = (1, 7, 28)
# The merchant's history as merchant_risk computes it, in this order.
MERCHANT_HISTORY: tuple[str, ...] = (
    "merchant_fraud_rate",
    "merchant_labeled_30d",
    *(f"merchant_frauds_{w}d" for w in HISTORY_WINDOWS),
    *(f"merchant_fraud_rate_{w}d" for w in HISTORY_WINDOWS),
)
NO_HISTORY: tuple[float, ...] = (0.0,) * len(MERCHANT_HISTORY)
# A card's plain windows (days); its payments of the longest are kept, at most CARD_KEPT.
CARD_WINDOWS: tuple[int, ...] = (1, 7, 30)
_CARD_SPANS = tuple(w * 86_400_000 for w in CARD_WINDOWS)
CARD_KEPT = 128

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
    *(f"card_n_{w}d" for w in CARD_WINDOWS),
    *(f"card_mean_{w}d" for w in CARD_WINDOWS),
    *(f"merchant_count_{w}" for w, _ in WINDOWS),
    "merchant_amount_mean_30d",
    "merchant_amount_ratio",
    *MERCHANT_HISTORY,
)
# v2: the merchant's fraud counts and rates over 1, 7 and 28 days of known outcomes; the
# card's plain windows.
FEATURE_VERSION = "v2"


@dataclass(frozen=True, slots=True)
class CardState:
    """What a card's history is reduced to; each event makes a new one (the old one may still
    be on its way to the changelog, which must hold only state whose outputs are durable)."""

    last_t: float | None = None
    counts: tuple[float, ...] = (0.0,) * _NW  # decayed, per window
    sums: tuple[float, ...] = (0.0,) * _NW
    usual: float | None = None  # moving average of its amounts
    total: int = 0
    recent: tuple[str, ...] = ()  # its last RECENT_MERCHANTS merchants
    applied: tuple[str, ...] = ()  # its last transaction ids (a resend is not counted twice)
    partition: int = -1  # of the last event applied (a Kafka replay is not counted twice)
    offset: int = -1
    times: tuple[float, ...] = ()  # its payments of the last 30 days, oldest first
    amounts: tuple[float, ...] = ()

    def already_applied(self, partition: int, offset: int, txn: Mapping[str, Any]) -> bool:
        """A Kafka replay (at or below the last offset applied from this partition) or an
        upstream resend (a transaction id among its last REPLAY_MEMORY)."""
        if partition == self.partition and offset <= self.offset:
            return True
        return txn["transaction_id"] in self.applied

    def to_json(self) -> list[Any]:
        return [
            self.last_t,
            list(self.counts),
            list(self.sums),
            self.usual,
            self.total,
            list(self.recent),
            list(self.applied),
            [self.partition, self.offset],
            list(self.times),
            list(self.amounts),
        ]

    @classmethod
    def from_json(cls, v: Sequence[Any]) -> CardState:
        """From its changelog form (a list; without the last event's origin before v1.1, its
        recent payments before v2)."""
        partition, offset = v[7] if len(v) > 7 else (-1, -1)
        times, amounts = (tuple(v[8]), tuple(v[9])) if len(v) > 9 else ((), ())
        return cls(
            v[0],
            tuple(v[1]),
            tuple(v[2]),
            v[3],
            int(v[4]),
            tuple(v[5]),
            tuple(v[6]),
            int(partition),
            int(offset),
            times,
            amounts,
        )


@dataclass(frozen=True, slots=True)
class MerchantState:
    """A merchant's decayed counts and amount sums (per partition that sees it)."""

    last_t: float | None = None
    counts: tuple[float, ...] = (0.0,) * _NW
    sums: tuple[float, ...] = (0.0,) * _NW

    def to_json(self) -> list[Any]:
        return [self.last_t, list(self.counts), list(self.sums)]

    @classmethod
    def from_json(cls, v: Sequence[Any]) -> MerchantState:
        return cls(v[0], tuple(v[1]), tuple(v[2]))


NEW_CARD = CardState()
NEW_MERCHANT = MerchantState()


def _decayed(
    last_t: float | None, counts: Sequence[float], sums: Sequence[float], t: float
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


def _windows(times: tuple[float, ...], amounts: tuple[float, ...], t: float) -> list[float]:
    """Counts, then mean amounts (0 without payments), of the payments in [t - w, t)."""
    end = bisect_left(times, t)
    counts: list[float] = []
    means: list[float] = []
    for span in _CARD_SPANS:
        start = bisect_left(times, t - span, 0, end)
        n = end - start
        counts.append(float(n))
        means.append(sum(amounts[start:end]) / n if n else 0.0)
    return counts + means


def _remember(
    times: tuple[float, ...], amounts: tuple[float, ...], t: float, amount: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The payments with this one added (in time order), those older than the longest window
    before the newest dropped, at most CARD_KEPT."""
    at = bisect_right(times, t)
    ts = (*times[:at], t, *times[at:])
    am = (*amounts[:at], amount, *amounts[at:])
    first = max(bisect_left(ts, ts[-1] - _CARD_SPANS[-1]), len(ts) - CARD_KEPT)
    return (ts[first:], am[first:]) if first else (ts, am)


def compute(
    txn: Mapping[str, Any],
    card: CardState | None,
    merchant: MerchantState | None,
    merchant_history: Sequence[float] = NO_HISTORY,
    origin: tuple[int, int] = (-1, -1),
) -> tuple[list[float], CardState, MerchantState]:
    """Features of one transaction, and the card and merchant states after it.

    merchant_history holds the MERCHANT_HISTORY figures from outcomes known before the
    transaction's event day (see streams.merchant_risk); origin is the (partition, offset)
    it was read from, remembered by the card to recognise a replay.
    """
    card = card or NEW_CARD
    merchant = merchant or NEW_MERCHANT
    t = float(txn["event_time"])
    amount = float(txn["amount"])
    merchant_id = txn["merchant_id"]

    c_last, usual, recent = card.last_t, card.usual, card.recent
    c_ref, c_counts, c_sums = _decayed(c_last, card.counts, card.sums, t)
    m_ref, m_counts, m_sums = _decayed(merchant.last_t, merchant.counts, merchant.sums, t)

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
        float(min(card.total, 10_000)),
        *_windows(card.times, card.amounts, t),
        *m_counts,
        merch_mean,
        amount / (merch_mean + 1.0),
        *merchant_history,
    ]

    _add(c_ref, c_counts, c_sums, t, amount)
    _add(m_ref, m_counts, m_sums, t, amount)
    usual = amount if usual is None else usual + USUAL_ALPHA * (amount - usual)
    if merchant_id in recent:
        recent = tuple(m for m in recent if m != merchant_id)
    new_card = CardState(
        c_ref,
        tuple(c_counts),
        tuple(c_sums),
        usual,
        card.total + 1,
        (*recent[-(RECENT_MERCHANTS - 1) :], merchant_id),
        (*card.applied[-(REPLAY_MEMORY - 1) :], txn["transaction_id"]),
        origin[0],
        origin[1],
        *_remember(card.times, card.amounts, t, amount),
    )
    return features, new_card, MerchantState(m_ref, tuple(m_counts), tuple(m_sums))


def as_dict(values: Sequence[float]) -> dict[str, float]:
    """Name the values of a feature vector."""
    return dict(zip(FEATURE_NAMES, values, strict=True))
