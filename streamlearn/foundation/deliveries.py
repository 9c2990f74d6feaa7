"""Producers that tell each batch when Kafka has acknowledged its messages.

A global `flush()` waits for every message any actor produced, so one slow batch holds up
all of them, and it blocks a thread per call. Here each batch counts its own messages; a
poller thread serves the producer's delivery reports, and a batch's `done` future resolves
on the event loop once its last message is acknowledged (or fails with the first error).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streamlearn.foundation.kafka import produce


class KafkaDeliveryError(RuntimeError):
    """Kafka refused a message after librdkafka's own retries."""


class Deliveries:
    """The messages of one batch, and a future that resolves when all are acknowledged."""

    __slots__ = ("_acked", "_expected", "_lock", "done", "error", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.done: asyncio.Future[None] = loop.create_future()
        self.error: str | None = None
        self._expected: int | None = None  # set when the batch has produced everything
        self._acked = 0
        self._lock = threading.Lock()

    def report(self, err: KafkaError | None, _msg: Message) -> None:
        """librdkafka's delivery report for one message (runs on the poller thread)."""
        with self._lock:
            self._acked += 1
            if err is not None and self.error is None:
                self.error = str(err)
            finished = self._expected is not None and self._acked >= self._expected
        if finished:
            self.loop.call_soon_threadsafe(self._resolve)

    def seal(self, count: int) -> None:
        """No more messages: `count` were produced (call on the loop)."""
        with self._lock:
            self._expected = count
            finished = self._acked >= count
        if finished:
            self._resolve()

    def _resolve(self) -> None:
        if self.done.done():
            return
        if self.error is not None:
            self.done.set_exception(KafkaDeliveryError(self.error))
        else:
            self.done.set_result(None)


class TrackedProducer:
    """A confluent-kafka producer whose delivery reports a poller thread serves."""

    def __init__(self, config: dict[str, Any], name: str) -> None:
        self.producer = Producer(config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"deliveries-{name}", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.1)

    def send(self, topic: str, value: bytes, deliveries: Deliveries, **kwargs: Any) -> None:
        produce(self.producer, topic, value, on_delivery=deliveries.report, **kwargs)

    def close(self, timeout: float = 30.0) -> int:
        """Flush what is queued, stop the poller; returns the messages still undelivered."""
        remaining = self.producer.flush(timeout)
        self._stop.set()
        self._thread.join(2.0)
        return remaining
