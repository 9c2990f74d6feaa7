"""A generated card history with the three fraud patterns of the public fraud handbook.

Customers and terminals sit on a 100 x 100 grid; a customer pays at terminals within a radius,
a Poisson number of times a day, amounts normal around the customer's mean. Fraud:
- any amount above 220;
- compromised terminals: every payment at one for the next 28 days;
- compromised cards: a third of the card's payments for the next 14 days, at 5x the amount.
Outcomes are known `label_delay_days` after the payment: every fraud, `legit_labeled` of legit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_MS = 86_400_000
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


@dataclass(frozen=True)
class History:
    """Transactions in event-time order (numpy columns) and when each outcome becomes known."""

    txn_id: np.ndarray  # str
    event_ms: np.ndarray  # int64
    card: np.ndarray  # int64
    terminal: np.ndarray  # int64
    amount: np.ndarray  # float64
    is_fraud: np.ndarray  # bool
    pattern: np.ndarray  # int8: 0 legit, 1 amount, 2 terminal, 3 card
    known_ms: np.ndarray  # int64, -1: no outcome is ever sent

    def __len__(self) -> int:
        return len(self.event_ms)

    def txn(self, i: int) -> dict[str, object]:
        """Row i as a Transaction record."""
        return {
            "transaction_id": str(self.txn_id[i]),
            "event_time": int(self.event_ms[i]),
            "card_id": f"C{self.card[i]}",
            "merchant_id": f"T{self.terminal[i]}",
            "amount": float(self.amount[i]),
        }


def generate(
    *,
    customers: int = 2500,
    terminals: int = 5000,
    days: int = 56,
    seed: int = 1,
    label_delay_days: float = 7.0,
    legit_labeled: float = 0.1,
    terminal_per_day: float | None = None,
    cards_per_day: float | None = None,
) -> History:
    """A history of `days` days; the compromise rates scale with the population by default
    (the handbook's 2 terminals of 10,000 and 3 cards of 5,000 a day)."""
    rng = np.random.default_rng(seed)
    radius = 5.0 * np.sqrt(10_000 / terminals)  # the handbook's terminals per customer
    cxy = rng.uniform(0, 100, (customers, 2))
    txy = rng.uniform(0, 100, (terminals, 2))
    mean_amount = rng.uniform(5, 100, customers)
    per_day = rng.uniform(0, 4, customers)
    nearby = [
        np.nonzero(((txy - cxy[c]) ** 2).sum(axis=1) < radius * radius)[0] for c in range(customers)
    ]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("t", "card", "term", "amount")}
    for day in range(days):
        n = rng.poisson(per_day)
        card = np.repeat(np.arange(customers), n)
        has = np.array([len(nearby[c]) > 0 for c in card], dtype=bool)
        card = card[has]
        secs = rng.normal(43_200, 20_000, len(card)).astype(np.int64)
        ok = (secs > 0) & (secs < 86_400)
        card, secs = card[ok], secs[ok]
        mu = mean_amount[card]
        amount = rng.normal(mu, mu / 2)
        low = amount < 0
        amount[low] = rng.uniform(0, 2 * mu[low])
        term = np.array([nearby[c][rng.integers(len(nearby[c]))] for c in card], dtype=np.int64)
        cols["t"].append(START_MS + day * DAY_MS + secs * 1000 + rng.integers(0, 1000, len(card)))
        cols["card"].append(card)
        cols["term"].append(term)
        cols["amount"].append(np.round(amount, 2))
    t = np.concatenate(cols["t"])
    order = np.argsort(t, kind="stable")
    t = t[order]
    card = np.concatenate(cols["card"])[order]
    term = np.concatenate(cols["term"])[order]
    amount = np.concatenate(cols["amount"])[order]
    pattern = np.zeros(len(t), dtype=np.int8)
    pattern[amount > 220] = 1
    day_of = (t - START_MS) // DAY_MS
    t_rate = terminal_per_day if terminal_per_day is not None else 2.0 * terminals / 10_000
    c_rate = cards_per_day if cards_per_day is not None else 3.0 * customers / 5_000
    for day in range(days):
        for bad in rng.choice(terminals, rng.poisson(t_rate), replace=False):
            hit = (term == bad) & (day_of >= day) & (day_of < day + 28) & (pattern == 0)
            pattern[hit] = 2
        for bad in rng.choice(customers, rng.poisson(c_rate), replace=False):
            mine = np.nonzero((card == bad) & (day_of >= day) & (day_of < day + 14))[0]
            picked = mine[rng.random(len(mine)) < 1 / 3]
            picked = picked[pattern[picked] == 0]
            amount[picked] = np.round(amount[picked] * 5, 2)
            pattern[picked] = 3
    is_fraud = pattern > 0
    labeled = is_fraud | (rng.random(len(t)) < legit_labeled)
    known = np.where(labeled, t + int(label_delay_days * DAY_MS), -1)
    ids = np.array([f"tx{i:07d}" for i in range(len(t))], dtype=object)
    return History(ids, t, card, term, amount, is_fraud, pattern, known)
