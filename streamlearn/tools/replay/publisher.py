"""The replay's producer: a history's transactions (key card_id) and outcomes (key
transaction_id) as the contract's Avro records, on the replay's own topics."""

from __future__ import annotations

from typing import Any

import pandas as pd
from confluent_kafka import Producer

from streamlearn.foundation.errors import BrokerUnavailable
from streamlearn.foundation.kafka import produce, producer_config
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde

# Transaction fields a file may leave out, and what the contract puts in their place.
DEFAULTS: dict[str, Any] = {
    "currency": "EUR",
    "country": None,
    "merchant_category": None,
    "channel": None,
    "device_id": None,
}
POLL_EVERY = 1000


class Publisher:
    """Publishes slices of the history's frames; flush() waits until Kafka has every one."""

    def __init__(self, settings: Settings) -> None:
        self.txn_topic = settings.topic("transactions")
        self.outcome_topic = settings.topic("outcomes")
        self.txn_serde = Serde("Transaction")
        self.outcome_serde = Serde("Outcome")
        self.producer = Producer(
            producer_config(
                settings,
                **{"linger.ms": 20, "compression.type": "lz4", "enable.idempotence": True},
            )
        )
        self.errors: list[str] = []
        self.transactions = 0
        self.outcomes = 0

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))

    def publish_transactions(self, frame: pd.DataFrame) -> int:
        """Each row as a Transaction (absent optional fields get the contract's defaults)."""
        fields = ["transaction_id", "event_time", "card_id", "merchant_id", "amount"]
        optional = [c for c in DEFAULTS if c in frame.columns]
        encode = self.txn_serde.encode
        for i, row in enumerate(frame[fields + optional].itertuples(index=False, name=None)):
            txn = {**DEFAULTS, **dict(zip(fields + optional, row, strict=True))}
            for name in optional:
                if txn[name] is pd.NA:
                    txn[name] = DEFAULTS[name]
            txn["event_time"] = int(txn["event_time"])
            txn["amount"] = float(txn["amount"])
            self._send(self.txn_topic, txn["card_id"], encode(txn), i)
        self.transactions += len(frame)
        return len(frame)

    def publish_outcomes(self, frame: pd.DataFrame) -> int:
        """Each row (transaction_id, is_fraud, event_time: when it became known) as an Outcome."""
        encode = self.outcome_serde.encode
        rows = frame[["transaction_id", "is_fraud", "event_time"]].itertuples(index=False)
        for i, (txn_id, is_fraud, known) in enumerate(rows):
            record = {
                "transaction_id": txn_id,
                "is_fraud": bool(is_fraud),
                "event_time": int(known),
            }
            self._send(self.outcome_topic, txn_id, encode(record), i)
        self.outcomes += len(frame)
        return len(frame)

    def _send(self, topic: str, key: str, value: bytes, i: int) -> None:
        produce(self.producer, topic, value, key=key.encode(), on_delivery=self._on_delivery)
        if i % POLL_EVERY == POLL_EVERY - 1:
            self.producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        """Return once Kafka acknowledged everything sent; BrokerUnavailable if it did not."""
        if self.producer.flush(timeout) or self.errors:
            raise BrokerUnavailable(
                f"Kafka did not take every replayed record: {self.errors[:3] or 'timed out'}"
            )
