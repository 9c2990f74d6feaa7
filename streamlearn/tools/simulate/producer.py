"""Publish simulated payments and their delayed outcomes to Kafka, live or as a backfill."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from streamlearn.foundation.errors import ConfigError, StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde
from streamlearn.tools.simulate import OutcomeDelays, SimEvent, Simulator, resolve_drift
from streamlearn.tools.simulate.events import DAY_S

# Live pacing: sleep at least this long when the next event is not due, so events go out
# in small chunks per tick instead of one sleep per event.
TICK_S = 0.002
PROGRESS_EVERY_S = 0.5
FLUSH_TIMEOUT_S = 60.0
POLL_EVERY = 1024  # produce calls between producer.poll(0)
# A pending outcome is one int, (outcome ms << 42) | (index << 1) | is_fraud: ~40 bytes
# instead of ~180 for a tuple, since a live run with day-long delays holds millions.
_SHIFT = 42
_INDEX_MASK = (1 << (_SHIFT - 1)) - 1


@dataclass
class SimulationReport:
    """What a simulation published; rate is transactions per wall-clock second."""

    transactions: int = 0
    frauds: int = 0
    outcomes: int = 0
    outcomes_pending: int = 0  # labels not yet due (in event time) when the run ended
    elapsed_s: float = 0.0
    rate: float = 0.0
    first_event_ms: int | None = None
    last_event_ms: int | None = None
    drift_at_event: int | None = None  # index (in the run) of the first drifted payment
    delivery_errors: int = 0
    first_error: str | None = None
    backfill_transactions: int = 0
    backfill_s: float = 0.0
    interrupted: bool = False
    phase: str = "starting"  # backfill, live, flushing, done
    # For progress bars: the backfill's event-time window; the live phase's start, end, count.
    backfill_window: tuple[int, int] | None = None
    live_start_ms: int | None = None
    live_until_ms: int | None = None
    live_count: int | None = None


class DeliveryFailed(StreamlearnError):
    """Some messages were not acknowledged by Kafka; `report` says how many and the first error."""

    def __init__(self, report: SimulationReport) -> None:
        super().__init__(
            f"{report.delivery_errors} simulated messages were not delivered "
            f"(first error: {report.first_error}); check the broker and STREAMLEARN_KAFKA_BOOTSTRAP"
        )
        self.report = report


class _Publisher:
    """Transactions out now, outcomes held in a heap until their event time has come."""

    def __init__(
        self,
        producer: Any,
        settings: Settings,
        report: SimulationReport,
        transaction_id: Callable[[int], str],
    ) -> None:
        self.producer = producer
        self.transaction_id = transaction_id
        self.report = report
        self.tx_topic = settings.topic("transactions")
        self.out_topic = settings.topic("outcomes")
        self.tx_serde = Serde("Transaction")
        self.out_serde = Serde("Outcome")
        self.pending: list[int] = []
        self._since_poll = 0

    def delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.report.delivery_errors += 1
            if self.report.first_error is None:
                self.report.first_error = f"{msg.topic() if msg else '?'}: {err}"

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key)
                break
            except BufferError:  # local queue full: let librdkafka send, then retry
                self.producer.poll(0.05)
        self._since_poll += 1
        if self._since_poll >= POLL_EVERY:
            self._since_poll = 0
            self.producer.poll(0)

    def transaction(self, ev: SimEvent) -> None:
        tx = ev.transaction
        self._produce(self.tx_topic, tx["card_id"], self.tx_serde.encode(tx))
        heapq.heappush(self.pending, (ev.outcome_ms << _SHIFT) | (ev.index << 1) | ev.is_fraud)
        r = self.report
        r.transactions += 1
        r.frauds += ev.is_fraud
        t = tx["event_time"]
        if r.first_event_ms is None or t < r.first_event_ms:
            r.first_event_ms = t
        if r.last_event_ms is None or t > r.last_event_ms:
            r.last_event_ms = t

    def due(self, now_ms: float) -> bool:
        """Whether some pending outcome is known by now_ms."""
        return bool(self.pending) and self.pending[0] < (int(now_ms) + 1) << _SHIFT

    def outcomes_due(self, now_ms: float) -> None:
        """Publish, in event-time order, every outcome known by now_ms."""
        pending = self.pending
        limit = (int(now_ms) + 1) << _SHIFT
        while pending and pending[0] < limit:
            x = heapq.heappop(pending)
            tid = self.transaction_id((x >> 1) & _INDEX_MASK)
            rec = {"transaction_id": tid, "is_fraud": bool(x & 1), "event_time": x >> _SHIFT}
            self._produce(self.out_topic, tid, self.out_serde.encode(rec))
            self.report.outcomes += 1


def _now_ms() -> int:
    return int(time.time() * 1000)


def run(
    settings: Settings,
    *,
    rate: float = 200.0,
    duration_s: float | None = None,
    count: int | None = None,
    fraud_rate: float = 0.005,
    outcome_delay_s: float | None = None,
    drift_at: float | None = None,
    backfill_days: float = 0.0,
    seed: int = 7,
    cards: int = 5000,
    merchants: int = 500,
    on_progress: Callable[[SimulationReport], None] | None = None,
    producer: Any = None,
) -> SimulationReport:
    """Publish simulated transactions (key card_id) and outcomes (key transaction_id).

    Backfill (backfill_days > 0) first: that much history ending now, at the population's
    own pace (cards x 3 payments a day), produced as fast as possible, with every outcome
    whose event time has passed. Then live, if duration_s or count is given or there was
    no backfill: event time = wall clock, paced at `rate` per second, outcomes published
    once their event time passes; it stops after duration_s, count live payments, or
    Ctrl-C. Outcomes not yet due at the end are counted in outcomes_pending.

    outcome_delay_s rescales label delays to legit 1-3 x and fraud 1-14 x that many seconds
    (default: days). Pending outcomes stay in memory (~40 bytes each): a long live run with
    day-scale delays holds about rate x 2 days of them, so give it a small outcome_delay_s.
    drift_at: a fraction of the live phase (of count, else duration_s; of the backfill's
    span if there is no bounded live phase), or above 1 the index of the first drifted
    payment counted from the run's start. `producer` replaces the Kafka producer (tests).
    Raises DeliveryFailed if any message was not acknowledged.
    """
    bounded = duration_s is not None or count is not None
    live = bounded or backfill_days <= 0
    _check(rate, duration_s, count, fraud_rate, outcome_delay_s, backfill_days)
    if drift_at is not None and drift_at <= 1 and not bounded and backfill_days <= 0:
        raise ConfigError("--drift-at as a fraction needs --duration, --count or --backfill-days")
    delays = OutcomeDelays.scaled(outcome_delay_s) if outcome_delay_s is not None else None
    sim = Simulator(
        seed=seed, cards=cards, merchants=merchants, fraud_rate=fraud_rate, delays=delays
    )
    report = SimulationReport(live_count=count)
    pub = _Publisher(producer, settings, report, sim.transaction_id)
    if producer is None:
        pub.producer = producer = _kafka_producer(settings, pub.delivered)

    started = time.monotonic()
    progress = _Progress(report, started, on_progress)
    try:
        if backfill_days > 0:
            report.phase = "backfill"
            end_ms = _now_ms()
            start_ms = end_ms - int(backfill_days * DAY_S * 1000)
            report.backfill_window = (start_ms, end_ms)
            if drift_at is not None and (drift_at > 1 or not bounded):
                index, time_ms = resolve_drift(drift_at, start_ms=start_ms, until_ms=end_ms)
                sim.set_drift(index=index, time_ms=time_ms)
            _backfill(sim, pub, start_ms, end_ms, progress)
            report.backfill_transactions = report.transactions
            report.backfill_s = time.monotonic() - started
        if live:
            report.phase = "live"
            start_ms = _now_ms()
            until_ms = start_ms + int(duration_s * 1000) if duration_s is not None else None
            report.live_start_ms, report.live_until_ms = start_ms, until_ms
            if drift_at is not None and sim.drift_index is None and sim.drift_ms is None:
                index, time_ms = resolve_drift(
                    drift_at,
                    first_index=sim.seq,
                    count=count,
                    start_ms=start_ms,
                    until_ms=until_ms,
                )
                sim.set_drift(index=index, time_ms=time_ms)
            _live(sim, pub, start_ms, rate, count, until_ms, progress)
    except KeyboardInterrupt:
        report.interrupted = True
    report.phase = "flushing"
    pub.outcomes_due(_now_ms())  # every label whose event time has come, nothing later
    remaining = producer.flush(FLUSH_TIMEOUT_S)
    pub.producer = None  # the producer's callback holds pub: break the cycle, close it now
    if remaining:
        report.delivery_errors += remaining
        report.first_error = report.first_error or (
            f"{remaining} messages still queued after a {FLUSH_TIMEOUT_S:.0f}s flush"
        )
    report.outcomes_pending = len(pub.pending)
    report.drift_at_event = sim.drift_event
    report.elapsed_s = time.monotonic() - started
    report.rate = report.transactions / report.elapsed_s if report.elapsed_s > 0 else 0.0
    report.phase = "done"
    if on_progress:
        on_progress(replace(report))
    if report.delivery_errors:
        raise DeliveryFailed(report)
    return report


def _kafka_producer(settings: Settings, on_error: Callable[[Any, Any], None]) -> Any:
    """The contract's topics (created if missing) and an idempotent, batching producer."""
    from confluent_kafka import Producer

    from streamlearn.foundation.kafka import ensure_topics, producer_config

    ensure_topics(settings)  # raises BrokerUnavailable with the fix when Kafka is not there
    # Only failed deliveries call back: a callback per message would cost more than produce.
    extra = {
        "linger.ms": 5,
        "compression.type": "lz4",
        "enable.idempotence": True,
        "on_delivery": on_error,
        "delivery.report.only.error": True,
    }
    return Producer(producer_config(settings, **extra))


def _check(
    rate: float,
    duration_s: float | None,
    count: int | None,
    fraud_rate: float,
    outcome_delay_s: float | None,
    backfill_days: float,
) -> None:
    if rate <= 0:
        raise ConfigError(f"--rate must be > 0 events per second, got {rate}")
    if duration_s is not None and duration_s <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {duration_s}")
    if count is not None and count < 0:
        raise ConfigError(f"--count must be >= 0, got {count}")
    if not 0 <= fraud_rate < 1:
        raise ConfigError(f"--fraud-rate must be in [0, 1), got {fraud_rate}")
    if outcome_delay_s is not None and outcome_delay_s < 0:
        raise ConfigError(f"--outcome-delay must be >= 0 seconds, got {outcome_delay_s}")
    if backfill_days < 0:
        raise ConfigError(f"--backfill-days must be >= 0, got {backfill_days}")


class _Progress:
    """Calls on_progress with a snapshot at most every PROGRESS_EVERY_S."""

    def __init__(
        self,
        report: SimulationReport,
        started: float,
        callback: Callable[[SimulationReport], None] | None,
    ) -> None:
        self.report, self.started, self.callback = report, started, callback
        self.next_at = started + PROGRESS_EVERY_S

    def tick(self, pending: int) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + PROGRESS_EVERY_S
        r = self.report
        r.elapsed_s = now - self.started
        r.rate = r.transactions / r.elapsed_s if r.elapsed_s > 0 else 0.0
        r.outcomes_pending = pending
        self.callback(replace(r))


def _backfill(
    sim: Simulator, pub: _Publisher, start_ms: int, end_ms: int, progress: _Progress
) -> None:
    """History as fast as possible; each outcome goes out once event time has passed it."""
    pending = pub.pending
    for i, ev in enumerate(sim.events(start_ms, until_ms=end_ms, diurnal=True)):
        t = ev.transaction["event_time"]
        if pending and pending[0] < (t + 1) << _SHIFT:
            pub.outcomes_due(t)
        pub.transaction(ev)
        if i & 4095 == 0:
            progress.tick(len(pending))
    pub.outcomes_due(end_ms)  # the history's matured labels


def _live(
    sim: Simulator,
    pub: _Publisher,
    start_ms: int,
    rate: float,
    count: int | None,
    until_ms: int | None,
    progress: _Progress,
) -> None:
    """Paced by the wall clock: an event goes out once its event time has come."""
    producer = pub.producer
    pending = pub.pending
    deadline = (until_ms / 1000.0 + 1.0) if until_ms is not None else None
    events = sim.events(start_ms, rate_per_s=rate, count=count, until_ms=until_ms, diurnal=False)
    try:
        for i, ev in enumerate(events):
            t = ev.transaction["event_time"]
            now = time.time()
            while t > now * 1000.0:  # not due: publish due outcomes, serve callbacks, wait
                if pub.due(now * 1000.0):
                    pub.outcomes_due(now * 1000.0)
                producer.poll(0)
                progress.tick(len(pending))
                time.sleep(max(TICK_S, min(0.1, t / 1000.0 - now)))
                now = time.time()
            pub.transaction(ev)
            if i & 63 == 0:
                if pub.due(now * 1000.0):
                    pub.outcomes_due(now * 1000.0)
                progress.tick(len(pending))
                # A producer that cannot keep up still stops on time.
                if deadline is not None and now > deadline:
                    break
    finally:
        events.close()
