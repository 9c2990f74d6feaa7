"""Seeded, event-time payment traffic with labelled fraud patterns and a drift point (no Kafka)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from streamlearn.tools.simulate.fraud import MERCHANT_BUDGET_FLOOR, START_P, FraudEngine
from streamlearn.tools.simulate.population import CHANNELS, Population

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
CHUNK = 2048
# Cap on how much more likely card fraud is in the quietest hour than on average.
NIGHT_BIAS_CAP = 6.0


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
        pop, rng, engine = self.pop, self.rng, self.engine
        intensity = pop.hourly_intensity
        peak = float(intensity.max()) if diurnal else 1.0
        mean_gap_ms = 1000.0 / (rate * peak)
        clock = float(start_ms)
        left = count if count is not None else -1
        d = self.delays
        f = engine.fraud_rate
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
            inc = (f * np.where(post | (not diurnal), 1.0, self._night_bias[hours])).tolist()
            span = (d.legit_max_s - d.legit_min_s) * 1000.0
            lag = (d.legit_min_s * 1000.0 + rng.random(slots.size) * span).astype(np.int64)
            yield from self._emit(
                n, times.tolist(), post.tolist(), bg, merchant_fraud, starts, inc, lag.tolist()
            )
            if n < slots.size:
                return
            if left > 0:
                left -= n

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

    def _emit(
        self,
        n: int,
        times: list[int],
        post: list[bool],
        bg: Any,
        merchant_fraud: list[bool],
        starts: list[bool],
        inc: list[float],
        lag: list[int],
    ) -> Iterator[SimEvent]:
        # The per-event loop: plain lists and locals, since this is the whole cost.
        pop, engine, rnd, d = self.pop, self.engine, self.engine.rnd, self.delays
        heap = engine.heap
        card_ids, minfo, devices = pop.card_ids, pop.merchant_info, pop.devices
        cards, merchants, amounts = bg.cards, bg.merchants, bg.amounts
        channels, devs = bg.channels, bg.devices
        prefix = self._prefix
        budget = engine.budget
        seq = self.seq
        frauds = self.frauds
        f_lo, f_span = d.fraud_min_s * 1000.0, (d.fraud_max_s - d.fraud_min_s) * 1000.0
        try:
            for i in range(n):
                t = times[i]
                if post[i] and self.drift_event is None:
                    self.drift_event = seq
                budget += inc[i]
                fx = None
                if heap and heap[0][0] <= t:
                    fx = engine.pop_due()
                elif budget >= 1.0 and starts[i]:
                    fx = engine.start(t, post[i])
                elif merchant_fraud[i] and budget > MERCHANT_BUDGET_FLOOR:
                    m = merchants[i]
                    mi = minfo[m]
                    amount = round(amounts[i] * rnd.uniform(1.0, 2.0), 2)
                    txn = {
                        "transaction_id": f"{prefix}{seq:010x}",
                        "event_time": t,
                        "card_id": card_ids[cards[i]],
                        "merchant_id": mi[0],
                        "amount": amount,
                        "currency": mi[3],
                        "country": mi[2],
                        "merchant_category": mi[1],
                        "channel": CHANNELS[channels[i]],
                        "device_id": devices[devs[i]],
                    }
                    budget -= 1.0
                    frauds += 1
                    seq += 1
                    yield SimEvent(
                        txn, True, t + int(f_lo + rnd.random() * f_span), "merchant", seq - 1
                    )
                    continue
                if fx is not None:
                    mi = minfo[fx.merchant]
                    txn = {
                        "transaction_id": f"{prefix}{seq:010x}",
                        "event_time": t,
                        "card_id": card_ids[fx.card],
                        "merchant_id": mi[0],
                        "amount": fx.amount,
                        "currency": mi[3],
                        "country": fx.country or mi[2],
                        "merchant_category": mi[1],
                        "channel": CHANNELS[fx.channel],
                        "device_id": fx.device,
                    }
                    budget -= 1.0
                    frauds += 1
                    seq += 1
                    yield SimEvent(
                        txn, True, t + int(f_lo + rnd.random() * f_span), fx.pattern, seq - 1
                    )
                    continue
                mi = minfo[merchants[i]]
                txn = {
                    "transaction_id": f"{prefix}{seq:010x}",
                    "event_time": t,
                    "card_id": card_ids[cards[i]],
                    "merchant_id": mi[0],
                    "amount": amounts[i],
                    "currency": mi[3],
                    "country": mi[2],
                    "merchant_category": mi[1],
                    "channel": CHANNELS[channels[i]],
                    "device_id": devices[devs[i]],
                }
                seq += 1
                yield SimEvent(txn, False, t + lag[i], "", seq - 1)
        finally:
            # Keep the state consistent however far the consumer iterated.
            engine.budget = budget
            self.seq = seq
            self.frauds = frauds


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
