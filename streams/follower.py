"""Reads a compacted topic from the beginning outside any consumer group, then follows it.

Every worker must see every model release and every registered writer schema, whatever
partitions of the event topics it owns, so these topics are assigned, never subscribed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from streamlearn.foundation.kafka import MODELS_MAX_BYTES, confluent_config
from streamlearn.foundation.settings import Settings

log = logging.getLogger(__name__)


class CompactedFollower:
    """Catch up synchronously (`start`), then hand each new message to `on_message` in a thread."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        on_catch_up: Callable[[list[Message]], None],
        on_message: Callable[[Message], None],
    ) -> None:
        self.topic = topic
        self.on_catch_up = on_catch_up
        self.on_message = on_message
        self.consumer = Consumer(
            confluent_config(
                settings,
                **{
                    "group.id": f"streamlearn-follow-{topic}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "fetch.message.max.bytes": MODELS_MAX_BYTES,
                    "receive.message.max.bytes": MODELS_MAX_BYTES + 1_000_000,
                    "max.partition.fetch.bytes": MODELS_MAX_BYTES,
                },
            )
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def start(self, timeout: float = 30.0) -> None:
        meta = self.consumer.list_topics(self.topic, timeout=10)
        topic_meta = meta.topics.get(self.topic)
        parts = sorted(topic_meta.partitions) if topic_meta and topic_meta.partitions else [0]
        tps = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts]
        self.consumer.assign(tps)
        ends = {tp.partition: self.consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
        positions = dict.fromkeys(ends, 0)
        backlog: list[Message] = []
        deadline = time.monotonic() + timeout
        while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            msg = self.consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            positions[msg.partition() or 0] = (msg.offset() or 0) + 1
            backlog.append(msg)
        self.on_catch_up(backlog)
        self._thread = threading.Thread(
            target=self._follow, name=f"follow-{self.topic}", daemon=True
        )
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.consumer.poll(0.5)
            except RuntimeError:  # closed during shutdown
                return
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.errors.append(str(error))
                continue
            try:
                self.on_message(msg)
            except Exception:  # a handler bug must not stop model or schema updates
                log.exception(
                    "handling %s[%d]@%d failed", msg.topic(), msg.partition(), msg.offset()
                )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.consumer.close()
