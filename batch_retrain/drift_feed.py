"""Drift events from the `drift-events` topic for `retrain --watch`: any producer's events count.

The workers store their events in `drift_events` and publish them on the topic; a drift
detector outside streamlearn may only publish. The watch loop merges both sources
(`merge_drift`, pure), so an event seen in both counts once. An undecodable message is
dead-lettered with its reason (stage `drift`), never dropped silently.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError

from streamlearn.foundation.dead_letters import DeadLetter, DeadLetterWriter
from streamlearn.foundation.kafka import confluent_config
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import SchemaError, Serde
from streamlearn.schemas.serde import default_registry

# Events older than this are of no use to the next decision: the feed keeps it bounded.
KEEP_MS = 7 * 86_400_000


@dataclass(frozen=True)
class SeenDrift:
    """One drift event, from the table or the topic."""

    time_ms: int
    kind: str
    subject: str
    statistic: float
    threshold: float


def merge_drift(
    *sources: Iterable[SeenDrift], since_ms: int | None, top: int = 5
) -> tuple[int, tuple[str, ...]]:
    """(distinct events newer than since_ms, the `top` subjects furthest above threshold)."""
    events = {
        (e.time_ms, e.kind, e.subject): e
        for source in sources
        for e in source
        if since_ms is None or e.time_ms > since_ms
    }
    excess: dict[str, float] = {}
    for e in events.values():
        if e.threshold > 0:
            what = f"{e.kind} {e.subject}"
            excess[what] = max(excess.get(what, 0.0), e.statistic / e.threshold)
    ranked = sorted(excess, key=lambda w: (-excess[w], w))[:top]
    return len(events), tuple(ranked)


def _ms(value: object) -> int:
    """timestamp-millis as our serde returns it (int), or a datetime from another reader."""
    stamp = getattr(value, "timestamp", None)
    return int(stamp() * 1000) if callable(stamp) else int(value)  # type: ignore[call-overload]


class DriftFeed:
    """Reads the drift-events topic in its own consumer group and keeps a week of events."""

    def __init__(self, settings: Settings, group: str = "streamlearn-retrain-watch") -> None:
        self.topic = settings.topic("drift-events")
        self.serde = Serde("DriftEvent", default_registry(settings))  # either framing
        self.consumer = Consumer(
            confluent_config(
                settings,
                **{
                    "group.id": f"{settings.topic_prefix}{group}",
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": True,
                },
            )
        )
        self.consumer.subscribe([self.topic])
        self.dlq = DeadLetterWriter(settings)
        self.events: list[SeenDrift] = []
        self.invalid = 0

    def poll(self, idle_s: float = 0.5, max_s: float = 5.0) -> list[SeenDrift]:
        """Read what arrived (until idle_s without a message, at most max_s); all kept events."""
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline:
            msg = self.consumer.poll(idle_s)
            if msg is None:
                break
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                break
            try:
                e = self.serde.decode(msg.value())
                self.events.append(
                    SeenDrift(
                        _ms(e["time"]),
                        e["kind"],
                        e["subject"],
                        float(e["statistic"]),
                        float(e["threshold"]),
                    )
                )
            except (SchemaError, KeyError, TypeError, ValueError) as exc:
                self.invalid += 1
                self.dlq.send(
                    DeadLetter(
                        self.topic,
                        msg.partition() or 0,
                        msg.offset() or 0,
                        "drift",
                        str(exc),
                        msg.key(),
                        msg.value(),
                    )
                )
        if self.invalid:
            self.dlq.flush()
        newest = max((e.time_ms for e in self.events), default=0)
        self.events = [e for e in self.events if e.time_ms > newest - KEEP_MS]
        return self.events

    def close(self) -> None:
        self.consumer.close()
