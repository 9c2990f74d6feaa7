"""Fraud patterns injected into the population's traffic, before and after the drift point."""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamlearn.tools.simulate.population import (
    ATM,
    ATM_KIND,
    CATEGORIES,
    COUNTRIES,
    ECOM,
    FAR_COUNTRIES,
    MOTO,
    ONLINE,
    PHYSICAL,
    POS,
    Population,
)

RISKY_CATEGORIES = frozenset({"electronics", "jewelry", "travel", "marketplace", "online_services"})
PRE_MIX = (("burst", 0.3), ("amount", 0.42), ("hour", 0.28))
POST_MIX = (("drift", 0.85), ("burst", 0.15))
# A slot starts a card pattern only with this chance, so starts are not evenly spaced.
START_P = 0.2
SHADY_SHARE = 0.02  # of merchants
SHADY_FRAUD_SHARE = 0.15  # of all fraud, targeted through the shady merchants' fraud rate
MERCHANT_BUDGET_FLOOR = -10.0


@dataclass
class FraudTxn:
    """What makes a payment fraudulent; the simulator fills in ids and time."""

    card: int
    merchant: int
    amount: float
    channel: int
    pattern: str
    country: str | None = None  # None: the merchant's country
    device: str | None = None


@dataclass
class _Episode:
    merchant: int
    rate: float
    end_slot: int


class FraudEngine:
    """Decides which slots carry fraud and builds the fraudulent payments.

    Before the drift:
      burst     a compromised card: 3-12 payments minutes apart (one burst lasts minutes to an
                hour) at merchants new to the card, mostly online and often abroad, well above
                the card's usual amount, often opening with a small test payment; some bursts
                are ATM cash-outs abroad.
      amount    one payment about ten times the card's usual amount at a pricey merchant.
      hour      one online payment at a new merchant at an hour the population rarely pays.
      merchant  payments at a shady merchant (a persistently elevated fraud rate) or at a
                merchant compromised for a few days (a much higher rate while it lasts).
    Card-level fraud leans toward quiet hours (its chance per payment rises as traffic falls,
    capped), so fraud is over-represented at night.

    After the drift ("drift" pattern): a cloned card pays 2-5 times, 30 minutes to 4 hours
    apart, small amounts (0.15-0.7 of its usual) at its own regular merchants, card present
    (pos), at normal hours (fraud now follows the daily cycle), in a country that is not the
    card's home. Old bursts keep a small share; the set of shady merchants changes.

    A budget keeps the fraud share on target: each slot adds fraud_rate (weighted by hour)
    and each emitted fraud payment spends one, whatever pattern it belongs to.
    """

    def __init__(
        self, pop: Population, rnd: random.Random, fraud_rate: float, daily_events: float
    ) -> None:
        if not 0.0 <= fraud_rate < 1.0:
            raise ValueError(f"fraud_rate must be in [0, 1), got {fraud_rate}")
        self.pop = pop
        self.rnd = rnd
        self.fraud_rate = fraud_rate
        self.daily_events = daily_events
        self.budget = 0.0
        # scheduled follow-ups: (event time ms, seq, card, pattern, burst state)
        self.heap: list[tuple[int, int, int, str, dict]] = []
        self._seq = 0
        self.episodes: list[_Episode] = []
        n = pop.n_merchants
        not_atm = np.flatnonzero(pop.m_kind != ATM_KIND)
        n_shady = max(1, round(SHADY_SHARE * n))
        order = np.array(rnd.sample(not_atm.tolist(), k=min(len(not_atm), 2 * n_shady)), int)
        self.shady_pre = order[:n_shady]
        self.shady_post = order[n_shady:] if order.size > n_shady else order[:n_shady]
        self.q_pre = self._shady_rates(self.shady_pre)
        self.q_post = self._shady_rates(self.shady_post)
        self._risky = pop.pool(np.isin(pop.m_category, _cat_indices(RISKY_CATEGORIES)))
        self._atm = pop.pool(pop.m_kind == ATM_KIND)
        self._by_country = [pop.pool(pop.m_country == k)[0].tolist() for k in range(len(COUNTRIES))]

    def _shady_rates(self, shady: np.ndarray) -> np.ndarray:
        q = np.zeros(self.pop.n_merchants)
        share = float(self.pop.m_pop[shady].sum())
        if share > 0:
            q[shady] = min(0.3, SHADY_FRAUD_SHARE * self.fraud_rate / share)
        return q

    # -- merchants -----------------------------------------------------------------------
    def merchant_rates(self, slot: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-merchant fraud chance per visit (before, after drift) for the next chunk."""
        self.episodes = [e for e in self.episodes if e.end_slot > slot]
        # Roughly one compromised merchant at a time, each for 1.5-6 days of traffic.
        mean_len = 3.75 * self.daily_events
        if not self.episodes and self.fraud_rate > 0 and self.rnd.random() < chunk / mean_len:
            merchant = self._pick(self._risky if self.rnd.random() < 0.5 else self._any())
            length = int(self.rnd.uniform(1.5, 6.0) * self.daily_events)
            # While it lasts, the episode carries 5-15% of all fraud (capped at half its visits).
            share = float(self.pop.m_pop[merchant])
            rate = min(0.5, self.fraud_rate * self.rnd.uniform(0.05, 0.15) / share)
            self.episodes.append(_Episode(merchant, rate, slot + length))
        if not self.episodes:
            return self.q_pre, self.q_post
        pre, post = self.q_pre.copy(), self.q_post.copy()
        for e in self.episodes:
            pre[e.merchant] = max(pre[e.merchant], e.rate)
            post[e.merchant] = max(post[e.merchant], e.rate)
        return pre, post

    def _any(self) -> tuple[np.ndarray, np.ndarray]:
        return self.pop.pool(self.pop.m_kind != ATM_KIND)

    def _pick(self, pool: tuple[np.ndarray, np.ndarray]) -> int:
        idx, cdf = pool
        return int(idx[min(int(np.searchsorted(cdf, self.rnd.random())), idx.size - 1)])

    # -- card patterns -------------------------------------------------------------------
    def start(self, t: int, drifted: bool) -> FraudTxn:
        """Start a card pattern at time t: return its first payment, schedule the rest."""
        name = _choose(POST_MIX if drifted else PRE_MIX, self.rnd.random())
        card = self.rnd.randrange(self.pop.n_cards)
        if name == "burst":
            return self._burst_start(card, t)
        if name == "drift":
            return self._drift_start(card, t)
        if name == "amount":
            return self._big_amount(card)
        return self._odd_hour(card)

    def pop_due(self) -> FraudTxn:
        """The earliest scheduled follow-up payment (the caller checked it is due)."""
        _, _, card, pattern, state = heapq.heappop(self.heap)
        if pattern == "burst":
            return self._burst_next(card, state)
        return self._drift_payment(card, state)

    def _schedule(self, t: int, card: int, pattern: str, state: dict) -> None:
        self._seq += 1
        heapq.heappush(self.heap, (t, self._seq, card, pattern, state))

    def _foreign_merchant(self, card: int, pool: tuple[np.ndarray, np.ndarray]) -> int:
        """A merchant from pool, new to the card and mostly outside its home country."""
        home = int(self.pop.c_home[card])
        preferred = set(self.pop.pref[card].tolist())
        for _ in range(8):
            m = self._pick(pool)
            abroad = int(self.pop.m_country[m]) != home
            if m not in preferred and (abroad or self.rnd.random() < 0.35):
                return m
        return m

    def _channel_for(self, merchant: int, ecom_p: float) -> int:
        kind = int(self.pop.m_kind[merchant])
        if kind == ONLINE:
            return ECOM
        if kind == PHYSICAL:
            return POS
        if kind == ATM_KIND:
            return ATM
        x = self.rnd.random()
        return ECOM if x < ecom_p else (MOTO if x < ecom_p + 0.05 else POS)

    def _burst_start(self, card: int, t: int) -> FraudTxn:
        rnd = self.rnd
        n = min(12, 3 + int(rnd.expovariate(1 / 2.5)))
        cash_out = rnd.random() < 0.15
        state: dict[str, Any] = {
            "left": n - 1,
            "gap_ms": rnd.uniform(60.0, 420.0) * 1000.0,
            "cash_out": cash_out,
            "device": f"dev-x{rnd.getrandbits(40):010x}",
            "t": t,
        }
        if not cash_out and rnd.random() < 0.35:  # a small test payment first
            m = self._foreign_merchant(card, self._risky)
            txn = FraudTxn(card, m, round(rnd.uniform(0.5, 5.0), 2), ECOM, "burst")
            txn.device = state["device"]
        else:
            txn = self._burst_payment(card, state)
        self._burst_follow(card, state)
        return txn

    def _burst_follow(self, card: int, state: dict) -> None:
        if state["left"] <= 0:
            return
        state["left"] -= 1
        state["t"] += max(5_000, int(self.rnd.expovariate(1.0 / state["gap_ms"])))
        self._schedule(state["t"], card, "burst", state)

    def _burst_next(self, card: int, state: dict) -> FraudTxn:
        txn = self._burst_payment(card, state)
        self._burst_follow(card, state)
        return txn

    def _burst_payment(self, card: int, state: dict) -> FraudTxn:
        rnd = self.rnd
        median = float(self.pop.c_median[card])
        if state["cash_out"]:
            m = self._foreign_merchant(card, self._atm)
            return FraudTxn(card, m, float(rnd.choice((200, 250, 300, 400, 500))), ATM, "burst")
        m = self._foreign_merchant(card, self._risky)
        amount = min(5000.0, median * math.exp(rnd.gauss(1.2, 0.5)))
        channel = self._channel_for(m, 0.8)
        device = state["device"] if channel == ECOM else None
        return FraudTxn(card, m, round(amount, 2), channel, "burst", device=device)

    def _big_amount(self, card: int) -> FraudTxn:
        rnd = self.rnd
        m = self._foreign_merchant(card, self._risky)
        amount = min(20_000.0, float(self.pop.c_median[card]) * math.exp(rnd.gauss(2.3, 0.4)))
        channel = self._channel_for(m, 0.6)
        device = f"dev-x{rnd.getrandbits(40):010x}" if channel == ECOM else None
        return FraudTxn(card, m, round(amount, 2), channel, "amount", device=device)

    def _odd_hour(self, card: int) -> FraudTxn:
        rnd = self.rnd
        m = self._foreign_merchant(card, self._risky)
        amount = float(self.pop.c_median[card]) * math.exp(rnd.gauss(0.7, 0.4))
        channel = self._channel_for(m, 0.9)
        device = f"dev-x{rnd.getrandbits(40):010x}" if channel == ECOM else None
        return FraudTxn(card, m, round(amount, 2), channel, "hour", device=device)

    # -- after the drift -----------------------------------------------------------------
    def _drift_start(self, card: int, t: int) -> FraudTxn:
        rnd = self.rnd
        home = int(self.pop.c_home[card])
        abroad = [c for c, _, _ in COUNTRIES if c != COUNTRIES[home][0]] + list(FAR_COUNTRIES)
        state = {"left": rnd.randint(1, 4), "country": rnd.choice(abroad), "t": t}
        txn = self._drift_payment(card, state, schedule=False)
        self._drift_follow(card, state)
        return txn

    def _drift_follow(self, card: int, state: dict) -> None:
        if state["left"] <= 0:
            return
        state["left"] -= 1
        state["t"] += int(self.rnd.uniform(1_800.0, 14_400.0) * 1000.0)
        self._schedule(state["t"], card, "drift", state)

    def _drift_payment(self, card: int, state: dict, schedule: bool = True) -> FraudTxn:
        rnd = self.rnd
        regular = [
            m for m in self.pop.preferred_of(card) if int(self.pop.m_kind[m]) != ONLINE
        ] or self._by_country[int(self.pop.c_home[card])]
        m = rnd.choice(regular)
        amount = float(self.pop.c_median[card]) * rnd.uniform(0.15, 0.7)
        channel = ATM if int(self.pop.m_kind[m]) == ATM_KIND else POS
        if channel == ATM:
            amount = max(20.0, round(amount / 20.0) * 20.0)
        txn = FraudTxn(card, m, round(max(0.5, amount), 2), channel, "drift", state["country"])
        if schedule:
            self._drift_follow(card, state)
        return txn


def _cat_indices(names: frozenset[str]) -> list[int]:
    return [i for i, (c, *_) in enumerate(CATEGORIES) if c in names]


def _choose(mix: tuple[tuple[str, float], ...], x: float) -> str:
    """The entry of mix (name, share) that x in [0, 1) falls in."""
    for name, share in mix:
        x -= share
        if x < 0:
            return name
    return mix[-1][0]
