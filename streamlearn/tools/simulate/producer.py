"""Publish simulated payments and their delayed outcomes to Kafka, live or as a backfill."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from streamlearn.foundation.errors import ConfigError, StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.tools.simulate import OutcomeDelays, Simulator, resolve_drift
from streamlearn.tools.simulate.events import DAY_S
from streamlearn.tools.simulate.outbox import SHIFT, Outbox

# Live pacing: sleep at least this long when the next event is not due, so events go out
# in small chunks per tick instead of one sleep per event.
TICK_S = 0.002
PROGRESS_EVERY_S = 0.5
FLUSH_TIMEOUT_S = 60.0


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
    _check(rate, duration_s, count, fraud_rate, outcome_delay_s, backfill_days, drift_at)
    delays = OutcomeDelays.scaled(outcome_delay_s) if outcome_delay_s is not None else None
    sim = Simulator(
        seed=seed, cards=cards, merchants=merchants, fraud_rate=fraud_rate, delays=delays
    )
    report = SimulationReport(live_count=count)
    pub = Outbox(producer, settings, report, sim.transaction_id)
    if producer is None:
        pub.producer = _kafka_producer(settings, pub.delivered)
    progress = _Progress(report, time.monotonic(), on_progress)
    try:
        if backfill_days > 0:
            # The drift falls in the backfill if it is an index, or if no live phase bounds it.
            in_backfill = drift_at is not None and (drift_at > 1 or not bounded)
            _backfill_phase(sim, pub, progress, backfill_days, drift_at if in_backfill else None)
        if live:
            _live_phase(sim, pub, progress, rate, count, duration_s, drift_at)
    except KeyboardInterrupt:
        report.interrupted = True
    _finish(pub, sim, progress.started)
    if on_progress:
        on_progress(replace(report))
    if report.delivery_errors:
        raise DeliveryFailed(report)
    return report


def _backfill_phase(
    sim: Simulator,
    pub: Outbox,
    progress: _Progress,
    backfill_days: float,
    drift_at: float | None,
) -> None:
    """backfill_days of history ending now, as fast as possible (drift_at: within it)."""
    report = pub.report
    report.phase = "backfill"
    end_ms = _now_ms()
    start_ms = end_ms - int(backfill_days * DAY_S * 1000)
    report.backfill_window = (start_ms, end_ms)
    if drift_at is not None:
        index, time_ms = resolve_drift(drift_at, start_ms=start_ms, until_ms=end_ms)
        sim.set_drift(index=index, time_ms=time_ms)
    _backfill(sim, pub, start_ms, end_ms, progress)
    report.backfill_transactions = report.transactions
    report.backfill_s = time.monotonic() - progress.started


def _live_phase(
    sim: Simulator,
    pub: Outbox,
    progress: _Progress,
    rate: float,
    count: int | None,
    duration_s: float | None,
    drift_at: float | None,
) -> None:
    """Live traffic from now, paced at rate; the drift, unless the backfill placed it."""
    report = pub.report
    report.phase = "live"
    start_ms = _now_ms()
    until_ms = start_ms + int(duration_s * 1000) if duration_s is not None else None
    report.live_start_ms, report.live_until_ms = start_ms, until_ms
    if drift_at is not None and sim.drift_index is None and sim.drift_ms is None:
        index, time_ms = resolve_drift(
            drift_at, first_index=sim.seq, count=count, start_ms=start_ms, until_ms=until_ms
        )
        sim.set_drift(index=index, time_ms=time_ms)
    _live(sim, pub, start_ms, rate, count, until_ms, progress)


def _finish(pub: Outbox, sim: Simulator, started: float) -> None:
    """Publish the labels due by now, flush, and fill in the report's final figures."""
    producer, report = pub.producer, pub.report
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
    drift_at: float | None,
) -> None:
    """ConfigError naming the flag for a value out of range."""
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
    bounded = duration_s is not None or count is not None
    if drift_at is not None and drift_at <= 1 and not bounded and backfill_days <= 0:
        raise ConfigError("--drift-at as a fraction needs --duration, --count or --backfill-days")


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


def _backfill(sim: Simulator, pub: Outbox, start_ms: int, end_ms: int, progress: _Progress) -> None:
    """History as fast as possible; each outcome goes out once event time has passed it."""
    pending = pub.pending
    for i, ev in enumerate(sim.events(start_ms, until_ms=end_ms, diurnal=True)):
        t = ev.transaction["event_time"]
        if pending and pending[0] < (t + 1) << SHIFT:
            pub.outcomes_due(t)
        pub.transaction(ev)
        if i & 4095 == 0:
            progress.tick(len(pending))
    pub.outcomes_due(end_ms)  # the history's matured labels


def _live(
    sim: Simulator,
    pub: Outbox,
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
