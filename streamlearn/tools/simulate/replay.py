"""Simulated history published in event-time order, fast or paced in wall-clock time.

The demo replays days of event time so that every card keeps its natural pace (a few
payments a day): the features seen live are then the ones the model was trained on.
Outcomes are published once the replay's event-time frontier passes their known time.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Producer

from streamlearn.foundation.errors import BrokerUnavailable
from streamlearn.foundation.kafka import producer_config
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde
from streamlearn.tools.simulate import SimEvent, outcome_of


@dataclass
class ReplayCounts:
    transactions: int = 0
    frauds: int = 0
    outcomes: int = 0
    frontier_ms: int = 0


class Replayer:
    """Publishes a Simulator's events (key card_id) and their outcomes (key transaction_id)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.txn_topic = settings.topic("transactions")
        self.outcome_topic = settings.topic("outcomes")
        self.txn_serde = Serde("Transaction")
        self.outcome_serde = Serde("Outcome")
        self.producer = Producer(
            producer_config(
                settings,
                **{"linger.ms": 5, "compression.type": "lz4", "enable.idempotence": True},
            )
        )
        self.counts = ReplayCounts()
        self._pending: list[tuple[int, int, dict]] = []
        self._errors: list[str] = []

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(
                    topic, key=key.encode(), value=value, on_delivery=self._on_delivery
                )
                return
            except BufferError:
                self.producer.poll(0.05)

    def _on_delivery(self, err, _msg) -> None:
        if err is not None:
            self._errors.append(str(err))

    def _release_outcomes(self, frontier_ms: int) -> None:
        while self._pending and self._pending[0][0] <= frontier_ms:
            _, _, outcome = heapq.heappop(self._pending)
            self._produce(
                self.outcome_topic, outcome["transaction_id"], self.outcome_serde.encode(outcome)
            )
            self.counts.outcomes += 1

    def publish(
        self,
        events: Iterator[SimEvent],
        *,
        rate: float | None = None,
        stop: threading.Event | None = None,
    ) -> ReplayCounts:
        """Publish events (at `rate` per wall-clock second, or as fast as possible)."""
        start = time.perf_counter()
        for sent, ev in enumerate(events):
            if stop is not None and stop.is_set():
                break
            if rate:
                delay = start + sent / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            txn = ev.transaction
            self._release_outcomes(txn["event_time"])
            self._produce(self.txn_topic, txn["card_id"], self.txn_serde.encode(txn))
            heapq.heappush(self._pending, (ev.outcome_ms, ev.index, outcome_of(ev)))
            self.counts.transactions += 1
            self.counts.frauds += int(ev.is_fraud)
            self.counts.frontier_ms = txn["event_time"]
            if sent % 1000 == 999:
                self.producer.poll(0)
        self.flush()
        return self.counts

    def release_until(self, frontier_ms: int) -> None:
        """Publish every outcome known by frontier_ms (e.g. now, at the end of a replay)."""
        self._release_outcomes(frontier_ms)
        self.flush()

    def flush(self) -> None:
        if self.producer.flush(60) or self._errors:
            raise BrokerUnavailable(
                f"the broker did not take every simulated event: {self._errors[:3] or 'timed out'}"
            )
