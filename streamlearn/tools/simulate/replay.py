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

from streamlearn.foundation.settings import Settings
from streamlearn.tools.contract_producer import ContractProducer
from streamlearn.tools.simulate import SimEvent, outcome_of


@dataclass
class ReplayCounts:
    transactions: int = 0
    frauds: int = 0
    outcomes: int = 0
    frontier_ms: int = 0


class Replayer(ContractProducer):
    """Publishes a Simulator's events (key card_id) and their outcomes (key transaction_id)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, linger_ms=5)
        self.settings = settings
        self.counts = ReplayCounts()
        self._pending: list[tuple[int, int, dict]] = []

    def _release_outcomes(self, frontier_ms: int) -> None:
        while self._pending and self._pending[0][0] <= frontier_ms:
            _, _, outcome = heapq.heappop(self._pending)
            self.send(
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
            self.send(self.txn_topic, txn["card_id"], self.txn_serde.encode(txn))
            heapq.heappush(self._pending, (ev.outcome_ms, ev.index, outcome_of(ev)))
            self.counts.transactions += 1
            self.counts.frauds += int(ev.is_fraud)
            self.counts.frontier_ms = txn["event_time"]
        self.flush()
        return self.counts

    def release_until(self, frontier_ms: int) -> None:
        """Publish every outcome known by frontier_ms (e.g. now, at the end of a replay)."""
        self._release_outcomes(frontier_ms)
        self.flush()

    def flush(self) -> None:
        self.flush_or_raise("the broker did not take every simulated event")
