"""The simulation's outbox: transactions go out at once, outcomes wait for their event time.

Pending outcomes are packed ints in a heap, since a live run may hold millions."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamlearn.foundation.kafka import produce
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde
from streamlearn.tools.simulate.events import SimEvent

if TYPE_CHECKING:
    from streamlearn.tools.simulate.producer import SimulationReport

POLL_EVERY = 1024  # produce calls between producer.poll(0)
# A pending outcome is one int, (outcome ms << 42) | (index << 1) | is_fraud: ~40 bytes
# instead of ~180 for a tuple, since a live run with day-long delays holds millions.
SHIFT = 42
_INDEX_MASK = (1 << (SHIFT - 1)) - 1


class Outbox:
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
        """The producer's delivery callback (failed deliveries only): count, keep the first."""
        if err is not None:
            self.report.delivery_errors += 1
            if self.report.first_error is None:
                self.report.first_error = f"{msg.topic() if msg else '?'}: {err}"

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        produce(self.producer, topic, value, key=key)
        self._since_poll += 1
        if self._since_poll >= POLL_EVERY:
            self._since_poll = 0
            self.producer.poll(0)

    def transaction(self, ev: SimEvent) -> None:
        """Publish a payment now and hold its outcome until its event time."""
        tx = ev.transaction
        self._produce(self.tx_topic, tx["card_id"], self.tx_serde.encode(tx))
        heapq.heappush(self.pending, (ev.outcome_ms << SHIFT) | (ev.index << 1) | ev.is_fraud)
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
        return bool(self.pending) and self.pending[0] < (int(now_ms) + 1) << SHIFT

    def outcomes_due(self, now_ms: float) -> None:
        """Publish, in event-time order, every outcome known by now_ms."""
        pending = self.pending
        limit = (int(now_ms) + 1) << SHIFT
        while pending and pending[0] < limit:
            x = heapq.heappop(pending)
            tid = self.transaction_id((x >> 1) & _INDEX_MASK)
            rec = {"transaction_id": tid, "is_fraud": bool(x & 1), "event_time": x >> SHIFT}
            self._produce(self.out_topic, tid, self.out_serde.encode(rec))
            self.report.outcomes += 1
