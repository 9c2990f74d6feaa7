"""The simulator: a population, its fraud and an event-time clock that yields payments."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Generator, Iterator
from typing import Any

import numpy as np

from streamlearn.tools.simulate.events import DAY_S, OutcomeDelays, SimEvent
from streamlearn.tools.simulate.fraud import MERCHANT_BUDGET_FLOOR, START_P, FraudEngine
from streamlearn.tools.simulate.population import CHANNELS, Population

CHUNK = 2048
# Cap on how much more likely card fraud is in the quietest hour than on average.
NIGHT_BIAS_CAP = 6.0
# One chunk's draws as plain lists: times, drift mask, background payments, merchant fraud,
# fraud starts, fraud budget increments, legit label lags.
_Chunk = tuple[list[int], list[bool], Any, list[bool], list[bool], list[float], list[int]]


class Simulator:
    """A population, its fraud and a clock: `events()` walks event time and yields payments.

        sim = Simulator(seed=7)
        sim.set_drift(index=100_000)
        for ev in sim.events(DEFAULT_START_MS, count=200_000): ...   # SimEvent

    Legitimate payments: the card is drawn by its activity and daily routine at that hour,
    the merchant among its regular ones (or elsewhere, by popularity), the channel by the
    merchant's kind and the card's online taste, the amount lognormal around the card's
    median times the merchant's price level. Fraud: see `FraudEngine`.

    From the drift point on:
      all traffic  amounts x1.35 and hybrid merchants' online share +0.30: the features in
                   DRIFTED_FEATURES move for every transaction (virtual drift);
      fraud        moves from bursts of large online payments at new merchants at night to
                   small card-present payments at the card's regular merchants at normal
                   hours, abroad; the shady merchants change: FRAUD_DRIFTED_FEATURES move in
                   the fraud class, so a model trained before the drift misses most of it.
    The fraud share is fraud_rate over whole days; by design it is higher at night and
    lower by day (before the drift).

    Repeated `events()` calls continue the same population, fraud state and id counter.
    """

    def __init__(
        self,
        *,
        seed: int = 7,
        cards: int = 5000,
        merchants: int = 500,
        fraud_rate: float = 0.005,
        delays: OutcomeDelays | None = None,
        tx_per_card_day: float = 3.0,
        late_fraction: float = 0.01,
        max_lateness_ms: int = 1000,
    ) -> None:
        pop_seed, traffic_seed = np.random.SeedSequence(seed).spawn(2)
        self.seed = seed
        self.pop = Population(np.random.default_rng(pop_seed), cards, merchants)
        self.rng = np.random.default_rng(traffic_seed)
        self.delays = delays or OutcomeDelays()
        self.tx_per_card_day = tx_per_card_day
        self.late_fraction = late_fraction
        self.max_lateness_ms = max_lateness_ms
        self.engine = FraudEngine(
            self.pop, random.Random(seed), fraud_rate, cards * tx_per_card_day
        )
        self.seq = 0  # events emitted so far (the next event's index)
        self.frauds = 0
        self.drift_index: int | None = None
        self.drift_ms: int | None = None
        self.drift_event: int | None = None  # index of the first post-drift event
        self._prefix: str | None = None
        # Card fraud per slot, by hour: inverse of the daily cycle (capped), mean 1 per slot.
        intensity = self.pop.hourly_intensity
        w = 0.3 + 0.7 * np.minimum(NIGHT_BIAS_CAP, 1.0 / intensity)
        self._night_bias = w / float((intensity * w).mean())

    @property
    def natural_rate(self) -> float:
        """Events per second of event time at the population's own pace (cards x tx/day)."""
        return self.pop.n_cards * self.tx_per_card_day / DAY_S

    @property
    def drifted(self) -> bool:
        return self.drift_event is not None

    def transaction_id(self, index: int) -> str:
        """The id of the event at index: a per-run prefix (seed, first start) and a counter."""
        return f"{self._prefix}{index:010x}"

    def set_drift(self, *, index: int | None = None, time_ms: int | None = None) -> None:
        """Drift from the first event whose index >= index or whose slot time >= time_ms."""
        self.drift_index, self.drift_ms = index, time_ms

    def events(
        self,
        start_ms: int,
        *,
        rate_per_s: float | None = None,
        count: int | None = None,
        until_ms: int | None = None,
        diurnal: bool = True,
    ) -> Generator[SimEvent, None, None]:
        """Payments from start_ms on, Poisson at rate_per_s (default natural_rate) events per
        second of event time, until count events or until_ms (unbounded if neither).

        diurnal=True modulates the rate by the population's daily cycle (mean rate_per_s);
        False keeps it constant, as a live feed paced by the wall clock needs.
        """
        rate = rate_per_s or self.natural_rate
        if rate <= 0:
            raise ValueError(f"rate_per_s must be > 0, got {rate}")
        if self._prefix is None:
            key = f"{self.seed}:{start_ms}".encode()
            self._prefix = hashlib.blake2b(key, digest_size=11).hexdigest()
        rng, intensity = self.rng, self.pop.hourly_intensity
        peak = float(intensity.max()) if diurnal else 1.0
        mean_gap_ms = 1000.0 / (rate * peak)
        clock = float(start_ms)
        left = count if count is not None else -1
        while left != 0:
            cand = clock + np.cumsum(rng.exponential(mean_gap_ms, CHUNK))
            clock = float(cand[-1])
            hours = (cand // 3_600_000).astype(np.int64) % 24
            if diurnal:  # thinning: keep a candidate with the relative intensity of its hour
                keep = rng.random(CHUNK) * peak < intensity[hours]
                cand, hours = cand[keep], hours[keep]
            slots = cand.astype(np.int64)
            n = slots.size
            if until_ms is not None:
                n = int(np.searchsorted(slots, until_ms, side="right"))
            if left > 0:
                n = min(n, left)
            yield from self._emit(n, self._draw(slots, hours, start_ms, diurnal))
            if n < slots.size:
                return
            if left > 0:
                left -= n

    def _draw(self, slots: np.ndarray, hours: np.ndarray, start_ms: int, diurnal: bool) -> _Chunk:
        """One chunk's random draws, vectorised: event times (some late), the drift mask, the
        background payments, merchant fraud and fraud starts, the fraud budget and legit lags."""
        pop, rng, engine, d = self.pop, self.rng, self.engine, self.delays
        idx = self.seq + np.arange(slots.size)
        post = self._post_drift(idx, slots)
        times = slots.copy()
        late = rng.random(slots.size) < self.late_fraction
        times[late] -= (rng.random(int(late.sum())) * self.max_lateness_ms).astype(np.int64)
        np.maximum(times, start_ms, out=times)
        bg = pop.draw(rng, times, post)
        q_pre, q_post = engine.merchant_rates(self.seq, slots.size)
        m_arr = np.asarray(bg.merchants)
        q = np.where(post, q_post[m_arr], q_pre[m_arr])
        merchant_fraud = (rng.random(slots.size) < q).tolist()
        starts = (rng.random(slots.size) < START_P).tolist()
        bias = np.where(post | (not diurnal), 1.0, self._night_bias[hours])
        inc = (engine.fraud_rate * bias).tolist()
        span = (d.legit_max_s - d.legit_min_s) * 1000.0
        lag = (d.legit_min_s * 1000.0 + rng.random(slots.size) * span).astype(np.int64)
        return times.tolist(), post.tolist(), bg, merchant_fraud, starts, inc, lag.tolist()

    def _post_drift(self, idx: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Latched drift mask: once one slot is past the drift point, every later one is."""
        if self.drift_event is not None:
            return np.ones(idx.size, dtype=bool)
        cond = np.zeros(idx.size, dtype=bool)
        if self.drift_index is not None:
            cond |= idx >= self.drift_index
        if self.drift_ms is not None:
            cond |= slots >= self.drift_ms
        if cond.any():
            cond[int(np.argmax(cond)) :] = True
        return cond

    def _emit(self, n: int, chunk: _Chunk) -> Iterator[SimEvent]:
        """The first n payments of a drawn chunk, fraud interleaved; updates the run's state."""
        # The per-event loop: plain lists and locals, since this is the whole cost.
        times, post, bg, merchant_fraud, starts, inc, lag = chunk
        pop, engine, rnd, d = self.pop, self.engine, self.engine.rnd, self.delays
        heap, prefix = engine.heap, self._prefix
        card_ids, minfo, devices = pop.card_ids, pop.merchant_info, pop.devices
        cards, merchants, amounts = bg.cards, bg.merchants, bg.amounts
        channels, devs = bg.channels, bg.devices
        budget, seq, frauds = engine.budget, self.seq, self.frauds
        f_lo, f_span = d.fraud_min_s * 1000.0, (d.fraud_max_s - d.fraud_min_s) * 1000.0
        try:
            for i in range(n):
                t = times[i]
                if post[i] and self.drift_event is None:
                    self.drift_event = seq
                budget += inc[i]
                fx = None
                at_merchant = False  # a shady merchant's fraud on a legitimate-looking draw
                if heap and heap[0][0] <= t:
                    fx = engine.pop_due()
                elif budget >= 1.0 and starts[i]:
                    fx = engine.start(t, post[i])
                elif merchant_fraud[i] and budget > MERCHANT_BUDGET_FLOOR:
                    at_merchant = True
                if fx is not None:
                    mi = minfo[fx.merchant]
                    card, amount, device = card_ids[fx.card], fx.amount, fx.device
                    country, channel, pattern = fx.country or mi[2], fx.channel, fx.pattern
                else:
                    mi = minfo[merchants[i]]
                    card, amount, device = card_ids[cards[i]], amounts[i], devices[devs[i]]
                    country, channel, pattern = mi[2], channels[i], ""
                    if at_merchant:
                        amount, pattern = round(amount * rnd.uniform(1.0, 2.0), 2), "merchant"
                txn = {
                    "transaction_id": f"{prefix}{seq:010x}",
                    "event_time": t,
                    "card_id": card,
                    "merchant_id": mi[0],
                    "amount": amount,
                    "currency": mi[3],
                    "country": country,
                    "merchant_category": mi[1],
                    "channel": CHANNELS[channel],
                    "device_id": device,
                }
                seq += 1
                if fx is None and not at_merchant:
                    yield SimEvent(txn, False, t + lag[i], "", seq - 1)
                    continue
                budget -= 1.0
                frauds += 1
                yield SimEvent(txn, True, t + int(f_lo + rnd.random() * f_span), pattern, seq - 1)
        finally:
            # Keep the state consistent however far the consumer iterated.
            engine.budget = budget
            self.seq = seq
            self.frauds = frauds
