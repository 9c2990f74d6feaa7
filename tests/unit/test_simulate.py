"""The simulator: determinism, fraud rate, event time, outcome delays, drift, schema, bursts."""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from typing import Any

import fastavro
import numpy as np
import pytest

from streamlearn.foundation.errors import ConfigError
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde, load_schema
from streamlearn.tools.simulate import (
    DEFAULT_START_MS,
    DRIFTED_FEATURES,
    OutcomeDelays,
    SimEvent,
    Simulator,
    generate,
    generate_batch,
    resolve_drift,
)
from streamlearn.tools.simulate.producer import DeliveryFailed, SimulationReport, run

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@pytest.fixture(scope="module")
def events_50k() -> list[SimEvent]:
    return list(generate(DEFAULT_START_MS, count=50_000, seed=11))


def test_same_seed_same_events_and_shorter_batches_are_prefixes() -> None:
    a = generate_batch(3000, seed=3)
    assert a == generate_batch(3000, seed=3)
    assert generate_batch(5000, seed=3)[:3000] == a
    assert a != generate_batch(3000, seed=4)


def test_ids_are_unique_and_shaped_like_the_contract(events_50k: list[SimEvent]) -> None:
    ids = [e.transaction["transaction_id"] for e in events_50k]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids[:100])
    tx = events_50k[0].transaction
    assert tx["card_id"].startswith("card-") and len(tx["card_id"]) == 11
    assert tx["merchant_id"].startswith("m-") and len(tx["merchant_id"]) == 6
    # another start time is another run: no id collides with the first one
    other = {t["transaction_id"] for t, _ in generate_batch(1000, start_ms=DEFAULT_START_MS + 1)}
    assert not other & set(ids)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fraud_rate_is_close_to_the_configured_one(seed: int) -> None:
    labels = [y for _, y in generate_batch(50_000, seed=seed, fraud_rate=0.005)]
    assert 0.0040 <= sum(labels) / len(labels) <= 0.0060


def test_fraud_rate_holds_at_a_live_pace_and_other_rates() -> None:
    sim = Simulator(seed=5, fraud_rate=0.02)
    evs = list(sim.events(DEFAULT_START_MS, rate_per_s=500.0, count=20_000, diurnal=False))
    assert 0.017 <= sum(e.is_fraud for e in evs) / len(evs) <= 0.023
    assert not any(y for _, y in generate_batch(5000, fraud_rate=0.0))


def test_all_patterns_show_up_before_the_drift(events_50k: list[SimEvent]) -> None:
    patterns = Counter(e.pattern for e in events_50k if e.is_fraud)
    assert set(patterns) >= {"burst", "amount", "hour", "merchant"}
    assert "drift" not in patterns
    assert all((e.pattern == "") == (not e.is_fraud) for e in events_50k)


def test_event_times_are_ordered_within_jitter_and_in_range() -> None:
    start, until = DEFAULT_START_MS, DEFAULT_START_MS + 2 * DAY_MS
    times = [e.transaction["event_time"] for e in generate(start, until_ms=until, seed=2)]
    assert len(times) > 10_000
    assert min(times) >= start and max(times) <= until
    running_max = np.maximum.accumulate(np.array(times))
    assert (running_max - np.array(times)).max() <= 1000  # late by at most max_lateness_ms
    assert sum(a <= b for a, b in itertools.pairwise(times)) / len(times) > 0.98
    # the rate is the natural pace: 5,000 cards x 3 a day
    assert len(times) == pytest.approx(2 * 15_000, rel=0.05)


def test_count_and_rate_set_the_span_of_event_time() -> None:
    evs = list(generate(DEFAULT_START_MS, count=10_000, rate_per_s=100.0, diurnal=False))
    span_s = (evs[-1].transaction["event_time"] - DEFAULT_START_MS) / 1000
    assert len(evs) == 10_000
    assert span_s == pytest.approx(100.0, rel=0.05)


def test_outcome_delays_stay_within_their_bounds(events_50k: list[SimEvent]) -> None:
    for delay_s, evs in [
        (None, events_50k),
        (5.0, list(generate(DEFAULT_START_MS, count=20_000, outcome_delay_s=5.0))),
    ]:
        d = OutcomeDelays.scaled(delay_s) if delay_s is not None else OutcomeDelays()
        legit = [e.outcome_ms - e.transaction["event_time"] for e in evs if not e.is_fraud]
        fraud = [e.outcome_ms - e.transaction["event_time"] for e in evs if e.is_fraud]
        assert d.legit_min_s * 1000 <= min(legit) <= max(legit) <= d.legit_max_s * 1000
        assert d.fraud_min_s * 1000 <= min(fraud) <= max(fraud) <= d.fraud_max_s * 1000
        # chargebacks take longer than confirmations on average
        assert np.mean(fraud) > np.mean(legit)


def test_compromised_cards_pay_in_bursts(events_50k: list[SimEvent]) -> None:
    by_card: dict[str, list[int]] = defaultdict(list)
    for e in events_50k:
        if e.pattern == "burst":
            by_card[e.transaction["card_id"]].append(e.transaction["event_time"])
    bursts = [sorted(ts) for ts in by_card.values() if len(ts) >= 3]
    assert len(bursts) >= 5
    # most bursts: 3+ payments within an hour of the first
    within_hour = [ts for ts in bursts if ts[2] - ts[0] <= HOUR_MS]
    assert len(within_hour) >= 0.7 * len(bursts)
    # burst payments are well above the card's usual amounts, mostly online
    burst = [e.transaction for e in events_50k if e.pattern == "burst"]
    legit = [e.transaction for e in events_50k if not e.is_fraud]
    assert np.median([t["amount"] for t in burst]) > 2 * np.median([t["amount"] for t in legit])
    share = Counter(t["channel"] for t in burst)
    assert (share["ecom"] + share["atm"]) / len(burst) > 0.6


def test_fraud_is_over_represented_at_night(events_50k: list[SimEvent]) -> None:
    hour = np.array([(e.transaction["event_time"] // HOUR_MS) % 24 for e in events_50k])
    fraud = np.array([e.is_fraud for e in events_50k])
    night = (hour >= 1) & (hour < 5)
    assert fraud[night].mean() > 2 * fraud[~night].mean()


def test_drift_moves_amounts_channels_and_the_fraud_pattern() -> None:
    sim = Simulator(seed=9)
    sim.set_drift(index=40_000)
    evs = list(sim.events(DEFAULT_START_MS, count=80_000))
    assert sim.drift_event == 40_000
    assert "amount" in DRIFTED_FEATURES and "channel_code" in DRIFTED_FEATURES
    pre, post = evs[:40_000], evs[40_000:]

    def legit_amount(es: list[SimEvent]) -> float:
        return float(np.median([e.transaction["amount"] for e in es if not e.is_fraud]))

    def share(es: list[SimEvent], channel: str, fraud: bool) -> float:
        sel = [e.transaction["channel"] for e in es if e.is_fraud == fraud]
        return sel.count(channel) / len(sel)

    assert legit_amount(post) > 1.2 * legit_amount(pre)
    assert share(post, "ecom", False) > share(pre, "ecom", False) + 0.05
    fraud_amount = [
        np.median([e.transaction["amount"] for e in es if e.is_fraud]) for es in (pre, post)
    ]
    assert fraud_amount[1] < 0.6 * fraud_amount[0]
    assert share(post, "pos", True) > share(pre, "pos", True) + 0.3
    assert not any(e.pattern == "drift" for e in pre)
    assert sum(e.pattern == "drift" for e in post) > 0.4 * sum(e.is_fraud for e in post)


def test_drift_as_a_fraction_of_the_run() -> None:
    assert resolve_drift(None) == (None, None)
    assert resolve_drift(0.5, count=1000) == (500, None)
    assert resolve_drift(0.5, first_index=200, count=1000) == (700, None)
    assert resolve_drift(0.25, start_ms=0, until_ms=4000) == (None, 1000)
    assert resolve_drift(1234) == (1234, None)
    with pytest.raises(ValueError):
        resolve_drift(0.5)
    evs = list(generate(DEFAULT_START_MS, count=4000, drift_at=0.5, fraud_rate=0.05))
    first = next(i for i, e in enumerate(evs) if e.pattern == "drift")
    assert 2000 <= first < 2300


def test_records_are_valid_transactions(events_50k: list[SimEvent]) -> None:
    serde = Serde("Transaction")
    schema = fastavro.parse_schema(load_schema("Transaction"))
    sample = events_50k[::25] + [e for e in events_50k if e.is_fraud]
    for e in sample:
        tx = e.transaction
        assert fastavro.validate(tx, schema, raise_errors=True)
        assert serde.decode(serde.encode(tx)) == tx
        assert tx["amount"] >= 0 and tx["channel"] in ("pos", "ecom", "atm", "moto")
    outcome = Serde("Outcome")
    rec = {"transaction_id": "x", "is_fraud": True, "event_time": sample[0].outcome_ms}
    assert outcome.decode(outcome.encode(rec)) == rec


def test_generation_speed_is_reported() -> None:
    t0 = time.perf_counter()
    n = len(generate_batch(100_000, seed=1))
    rate = n / (time.perf_counter() - t0)
    print(f"\nsimulate: {rate:,.0f} events/s generated")  # no assertion: machines differ
    assert n == 100_000


# -- run() against a fake producer -------------------------------------------------------


class FakeProducer:
    """Records what would go to Kafka; flush reports `stuck` undelivered messages."""

    def __init__(self, stuck: int = 0) -> None:
        self.sent: list[tuple[str, str, bytes, float]] = []
        self.stuck = stuck
        self.full_once = True

    def produce(self, topic: str, value: bytes, key: str) -> None:
        if self.full_once:  # the first call finds the local queue full
            self.full_once = False
            raise BufferError("queue full")
        self.sent.append((topic, key, value, time.time()))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return self.stuck


def _decoded(fake: FakeProducer, topic: str, name: str) -> list[dict[str, Any]]:
    serde = Serde(name)
    return [serde.decode(v) for t, _, v, _ in fake.sent if t == topic]


def test_backfill_publishes_history_and_matured_outcomes_in_order() -> None:
    settings = Settings(topic_prefix="sim-")
    fake = FakeProducer()
    before = int(time.time() * 1000)
    seen: list[SimulationReport] = []
    report = run(
        settings, backfill_days=6, cards=500, merchants=100, producer=fake, on_progress=seen.append
    )
    txs = _decoded(fake, "sim-transactions", "Transaction")
    outs = _decoded(fake, "sim-outcomes", "Outcome")
    assert report.transactions == len(txs) == report.backfill_transactions
    assert len(txs) == pytest.approx(6 * 1500, rel=0.1)
    assert report.outcomes == len(outs) and report.outcomes + report.outcomes_pending == len(txs)
    assert report.first_event_ms >= before - 6 * DAY_MS - 1000
    assert report.last_event_ms <= int(time.time() * 1000)
    assert all(o["event_time"] <= int(time.time() * 1000) for o in outs)
    assert {o["transaction_id"] for o in outs} <= {t["transaction_id"] for t in txs}
    out_times = [o["event_time"] for o in outs]
    assert out_times == sorted(out_times)
    # keys: card_id for transactions, transaction_id for outcomes
    keys = {t: k for t, k, _, _ in fake.sent}
    assert keys["sim-transactions"].startswith("card-")
    assert len(keys["sim-outcomes"]) == 32
    # labels older than the longest legit delay have all matured; recent ones are pending
    assert report.outcomes > 0.4 * len(txs) and report.outcomes_pending > 0
    assert report.frauds >= sum(o["is_fraud"] for o in outs) > 0
    assert seen and seen[-1].phase == "done" and seen[-1].transactions == report.transactions


def test_live_run_paces_events_and_outcomes_flow_during_the_run() -> None:
    fake = FakeProducer()
    t0 = time.time()
    report = run(
        Settings(), rate=2000.0, count=600, outcome_delay_s=0.05, producer=fake, drift_at=0.5
    )
    elapsed = time.time() - t0
    txs = _decoded(fake, "transactions", "Transaction")
    assert report.transactions == len(txs) == 600 and report.backfill_transactions == 0
    assert elapsed >= 0.25  # 600 events at 2,000/s cannot go out faster than ~0.3 s
    # an event goes out once the wall clock has reached its event time, not before
    sent = [s for t, _, _, s in fake.sent if t == "transactions"]
    assert all(tx["event_time"] <= s * 1000 + 1 for tx, s in zip(txs, sent, strict=True))
    assert txs[-1]["event_time"] - txs[0]["event_time"] >= 250
    # outcomes (due 50-700 ms after their payment) went out while payments still flowed
    outs = [s for t, _, _, s in fake.sent if t == "outcomes"]
    assert report.outcomes == len(outs) > 0 and min(outs) < max(sent)
    assert report.drift_at_event == 300


def test_delivery_failures_are_raised_with_the_report() -> None:
    with pytest.raises(DeliveryFailed) as info:
        run(Settings(), rate=5000.0, count=50, producer=FakeProducer(stuck=7))
    assert info.value.report.delivery_errors == 7


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0},
        {"duration_s": -1},
        {"fraud_rate": 1.5},
        {"backfill_days": -1},
        {"drift_at": 0.5},
    ],
)
def test_bad_arguments_name_the_flag(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="--"):
        run(Settings(), producer=FakeProducer(), **kwargs)
