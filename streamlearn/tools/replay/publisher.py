"""The replay's producer: a history's transactions (key card_id) and outcomes (key
transaction_id) as the contract's Avro records, on the replay's own topics."""

from __future__ import annotations

from typing import Any

import pandas as pd

from streamlearn.foundation.settings import Settings
from streamlearn.tools.contract_producer import ContractProducer

# Transaction fields a file may leave out, and what the contract puts in their place.
DEFAULTS: dict[str, Any] = {
    "currency": "EUR",
    "country": None,
    "merchant_category": None,
    "channel": None,
    "device_id": None,
}


class Publisher(ContractProducer):
    """Publishes slices of the history's frames; flush() waits until Kafka has every one."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, linger_ms=20)
        self.transactions = 0
        self.outcomes = 0

    def publish_transactions(self, frame: pd.DataFrame) -> int:
        """Each row as a Transaction (absent optional fields get the contract's defaults)."""
        fields = ["transaction_id", "event_time", "card_id", "merchant_id", "amount"]
        optional = [c for c in DEFAULTS if c in frame.columns]
        encode = self.txn_serde.encode
        for row in frame[fields + optional].itertuples(index=False, name=None):
            txn = {**DEFAULTS, **dict(zip(fields + optional, row, strict=True))}
            for name in optional:
                if txn[name] is pd.NA:
                    txn[name] = DEFAULTS[name]
            txn["event_time"] = int(txn["event_time"])
            txn["amount"] = float(txn["amount"])
            self.send(self.txn_topic, txn["card_id"], encode(txn))
        self.transactions += len(frame)
        return len(frame)

    def publish_outcomes(self, frame: pd.DataFrame) -> int:
        """Each row (transaction_id, is_fraud, event_time: when it became known) as an Outcome."""
        encode = self.outcome_serde.encode
        rows = frame[["transaction_id", "is_fraud", "event_time"]].itertuples(index=False)
        for txn_id, is_fraud, known in rows:
            record = {
                "transaction_id": txn_id,
                "is_fraud": bool(is_fraud),
                "event_time": int(known),
            }
            self.send(self.outcome_topic, txn_id, encode(record))
        self.outcomes += len(frame)
        return len(frame)

    def flush(self, timeout: float = 60.0) -> None:
        """Return once Kafka acknowledged everything sent; BrokerUnavailable if it did not."""
        self.flush_or_raise("Kafka did not take every replayed record", timeout)
