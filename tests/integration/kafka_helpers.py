"""Produce and read back whole topics on the test broker, and small waiting helpers.

Everything here talks to the real broker with confluent-kafka; nothing is mocked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import uuid4

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    Producer,
    TopicPartition,
)

from streamlearn.foundation.kafka import MODELS_MAX_BYTES, admin, confluent_config
from streamlearn.foundation.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Record:
    """One message as the broker stores it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


@dataclass(frozen=True)
class Sent:
    """One produced message and where the broker put it."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


def produce(
    settings: Settings,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes | None]],
    *,
    timeout: float = 30.0,
) -> list[Sent]:
    """Produce (key, value) pairs in order; wait until the broker has all; return placements.

    Idempotent producer: retries never reorder or duplicate, so a key's messages keep their
    order within its partition.
    """
    producer = Producer(confluent_config(settings, **{"enable.idempotence": True, "linger.ms": 5}))
    placed: list[Sent | None] = []
    errors: list[str] = []

    def report(index: int) -> Callable[[Any, Any], None]:
        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))
                return
            placed[index] = Sent(msg.key(), msg.value(), msg.partition(), msg.offset())

        return on_delivery

    for key, value in messages:
        placed.append(None)
        callback = report(len(placed) - 1)
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=callback)
                break
            except BufferError:
                producer.poll(0.05)
    remaining = producer.flush(timeout)
    assert remaining == 0 and not errors, f"produce to {topic}: {remaining} pending, {errors[:3]}"
    assert all(p is not None for p in placed)
    return [p for p in placed if p is not None]


def consume_all(settings: Settings, topic: str, *, timeout: float = 30.0) -> list[Record]:
    """Every message of the topic, from the beginning up to the high watermarks now."""
    consumer = Consumer(
        confluent_config(
            settings,
            **{
                "group.id": f"test-read-{uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "fetch.message.max.bytes": MODELS_MAX_BYTES,
                "receive.message.max.bytes": MODELS_MAX_BYTES + 1_000_000,
                "max.partition.fetch.bytes": MODELS_MAX_BYTES,
            },
        )
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        assert meta is not None and meta.error is None, f"topic {topic}: {meta and meta.error}"
        ends: dict[int, int] = {}
        for p in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        if not ends:
            return []
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        out: list[Record] = []
        deadline = time.monotonic() + timeout
        while ends:
            assert time.monotonic() < deadline, f"reading {topic} did not finish in {timeout}s"
            for msg in consumer.consume(1000, 0.5):
                assert msg.error() is None, msg.error()
                p = msg.partition()
                if p not in ends or msg.offset() >= ends[p]:
                    continue
                out.append(
                    Record(
                        msg.topic(),
                        p,
                        msg.offset(),
                        msg.key(),
                        msg.value(),
                        dict(msg.headers() or []),
                    )
                )
                if msg.offset() >= ends[p] - 1:
                    del ends[p]
        return out
    finally:
        consumer.close()


def wait_until(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll check() until it returns a truthy value; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except OSError as exc:  # the worker's port between restarts
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})"
            )
        time.sleep(interval)


def shift_to(transactions: Sequence[dict[str, Any]], newest_ms: int) -> list[dict[str, Any]]:
    """Copies with event times moved by one offset so that the newest is newest_ms."""
    delta = newest_ms - max(t["event_time"] for t in transactions)
    return [{**t, "event_time": t["event_time"] + delta} for t in transactions]


def rewind_group(
    settings: Settings, group: str, topic: str, *, to: int = 0, timeout: float = 30.0
) -> None:
    """Set the committed offsets of an idle consumer group back to the start of the topic.

    What a crash right after processing (before the commit) leaves behind, made
    deterministic: the next worker processes every event of the topic again.
    """
    client = admin(settings)
    meta = client.list_topics(topic, timeout=10).topics[topic]
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p, to) for p in sorted(meta.partitions)]
    )
    for future in client.alter_consumer_group_offsets([request]).values():
        future.result(timeout=timeout)


def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """The consumer group's committed offset per partition (negative: none committed)."""
    client = admin(settings)
    meta = client.list_topics(topic, timeout=10).topics[topic]
    consumer = Consumer(confluent_config(settings, **{"group.id": group}))
    try:
        tps = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
    finally:
        consumer.close()
