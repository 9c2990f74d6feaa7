"""The only writer of the dead-letter topic: raw bytes kept, reason and origin in headers."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from confluent_kafka import Producer

from streamlearn.foundation.kafka import producer_config
from streamlearn.foundation.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class DeadLetter:
    """One rejected message and why."""

    source_topic: str
    partition: int
    offset: int
    stage: str  # decode, validate, score, learn, model
    error: str
    key: bytes | None
    value: bytes | None


@dataclass
class DeadLetterWriter:
    """Produces dead letters and counts them by stage; flush() makes them durable."""

    settings: Settings
    counts: dict[str, int] = field(default_factory=dict)
    _producer: Producer | None = None
    _errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.topic = self.settings.topic("dead-letters")
        self._producer = Producer(
            producer_config(
                self.settings,
                **{"enable.idempotence": True, "linger.ms": 5, "message.max.bytes": 16_000_000},
            )
        )

    def send(self, letter: DeadLetter) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            ("error", letter.error.encode("utf-8", "replace")[:2000]),
            ("stage", letter.stage.encode()),
            ("source_topic", letter.source_topic.encode()),
            ("source_partition", str(letter.partition).encode()),
            ("source_offset", str(letter.offset).encode()),
            ("failed_at", str(int(time.time() * 1000)).encode()),
        ]
        self.counts[letter.stage] = self.counts.get(letter.stage, 0) + 1
        log.warning(
            "dead letter %s[%d]@%d (%s): %s",
            letter.source_topic,
            letter.partition,
            letter.offset,
            letter.stage,
            letter.error,
        )
        assert self._producer is not None
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    key=letter.key,
                    value=letter.value,
                    headers=headers,
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)

    def _on_delivery(self, err, _msg) -> None:
        if err is not None:
            self._errors.append(str(err))

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every dead letter is acknowledged; raise if any was refused."""
        assert self._producer is not None
        remaining = self._producer.flush(timeout)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise RuntimeError(
                f"dead-letter delivery failed ({remaining} pending): {'; '.join(errors[:3])}"
            )

    @property
    def total(self) -> int:
        return sum(self.counts.values())
