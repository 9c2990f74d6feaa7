"""A batching Kafka producer of the contract's transactions and outcomes as Avro records.

Shared by the simulated-history replayer and `streamlearn replay`'s publisher."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer

from streamlearn.foundation.errors import BrokerUnavailable
from streamlearn.foundation.kafka import produce, producer_config
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde

POLL_EVERY = 1000  # sends between producer.poll(0), which serves delivery callbacks


class ContractProducer:
    """Transactions (key card_id) and outcomes (key transaction_id) on the contract's topics,
    idempotent and lz4-compressed; failed deliveries are kept in `errors`."""

    def __init__(self, settings: Settings, linger_ms: int) -> None:
        self.txn_topic = settings.topic("transactions")
        self.outcome_topic = settings.topic("outcomes")
        self.txn_serde = Serde("Transaction")
        self.outcome_serde = Serde("Outcome")
        extra = {"linger.ms": linger_ms, "compression.type": "lz4", "enable.idempotence": True}
        self.producer = Producer(producer_config(settings, **extra))
        self.errors: list[str] = []
        self._sent = 0

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))

    def send(self, topic: str, key: str, value: bytes) -> None:
        """Produce one record (retrying while the local queue is full)."""
        produce(self.producer, topic, value, key=key.encode(), on_delivery=self._on_delivery)
        self._sent += 1
        if self._sent % POLL_EVERY == 0:
            self.producer.poll(0)

    def flush_or_raise(self, what: str, timeout: float = 60.0) -> None:
        """Return once Kafka acknowledged everything sent; BrokerUnavailable naming `what`."""
        if self.producer.flush(timeout) or self.errors:
            raise BrokerUnavailable(f"{what}: {self.errors[:3] or 'timed out'}")

    def close(self, timeout: float = 5.0) -> None:
        """Hand over what is queued (up to timeout) and let go of the broker: a producer left
        open after the broker stops logs a refused connection every second."""
        self.producer.flush(timeout)
        close = getattr(self.producer, "close", None)  # confluent-kafka >= 2.x has it
        if close is not None:
            close()
