"""The models topic: publish a release and read back the current one.

A champion is keyed by the model name, a shadow by "<name>.shadow": compaction keeps the latest
of each, so a worker started later finds both. A tombstone on the shadow key clears the shadow.
"""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from streamlearn.domain.release import release_key
from streamlearn.foundation.errors import BrokerUnavailable
from streamlearn.foundation.kafka import (
    MODELS_MAX_BYTES,
    confluent_config,
    ensure_topics,
    producer_config,
)
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde


def publish_release(settings: Settings, record: dict[str, Any], *, timeout: float = 30.0) -> None:
    """Produce the release to settings.topic('models') and wait until the broker has it."""
    value = Serde("ModelRelease").encode(record)
    key = release_key(record["name"], record.get("role", "champion"))
    _produce(settings, key, value, str(record["version"]), timeout)


def withdraw_shadow(settings: Settings, name: str = "fraud", *, timeout: float = 30.0) -> None:
    """Publish a tombstone on the shadow key: every worker clears its shadow slot."""
    _produce(settings, release_key(name, "shadow"), None, f"{name} shadow withdrawal", timeout)


def _produce(
    settings: Settings, key: bytes, value: bytes | None, what: str, timeout: float
) -> None:
    topic = settings.topic("models")
    # The topic must be compacted and accept large messages; an auto-created one would not.
    ensure_topics(settings, timeout=timeout)
    producer = Producer(
        producer_config(
            settings,
            **{
                "message.max.bytes": MODELS_MAX_BYTES,
                "compression.type": "zstd",
                "acks": "all",
                "enable.idempotence": True,
                "message.timeout.ms": int(timeout * 1000),
            },
        )
    )
    errors: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    try:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
    except (KafkaException, BufferError) as exc:
        raise BrokerUnavailable(
            f"cannot publish {what} to {topic}: {exc} (check STREAMLEARN_KAFKA_BOOTSTRAP)"
        ) from exc
    pending = producer.flush(timeout)
    if pending or errors:
        why = errors[0] if errors else f"not delivered within {timeout:.0f}s"
        raise BrokerUnavailable(
            f"cannot publish {what} to {topic} at "
            f"{settings.kafka_bootstrap}: {why} (is the broker up? `streamlearn up`)"
        )


def fetch_release(
    settings: Settings, name: str = "fraud", *, timeout: float = 15.0
) -> dict[str, Any] | None:
    """The latest release published under `name` (what workers serve), or None if none."""
    topic = settings.topic("models")
    consumer = Consumer(
        confluent_config(
            settings,
            **{
                "group.id": f"streamlearn-retrain-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.message.max.bytes": MODELS_MAX_BYTES,
                "fetch.max.bytes": MODELS_MAX_BYTES,
                "receive.message.max.bytes": MODELS_MAX_BYTES + 1_000_000,
            },
        )
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return None
        ends: dict[int, int] = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends[p] = high
        if not ends:
            return None
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        latest: bytes | None = None
        key = name.encode()
        while ends:
            msg = consumer.poll(timeout)
            if msg is None:
                raise BrokerUnavailable(f"reading {topic} stalled for {timeout:.0f}s")
            if msg.error():
                raise BrokerUnavailable(f"reading {topic}: {msg.error()}")
            if msg.key() == key:
                # A tombstone (None value) withdraws the model.
                latest = msg.value()
            partition = msg.partition() or 0
            if (msg.offset() or 0) >= ends.get(partition, 0) - 1:
                ends.pop(partition, None)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"cannot read {topic} at {settings.kafka_bootstrap}: {exc} (is the broker up?)"
        ) from exc
    finally:
        consumer.close()
    return Serde("ModelRelease").decode(latest) if latest else None
