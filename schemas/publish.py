"""Registering writer schemas on the compacted schemas topic, after a resolution check."""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from streamlearn.foundation.errors import BrokerUnavailable
from streamlearn.foundation.kafka import confluent_config, ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import SchemaError, Serde
from streamlearn.schemas.serde import NAMES, schema_fingerprint


def register(settings: Settings, schema: dict[str, Any]) -> str:
    """Publish a writer schema if it resolves against the reader schema of the same name."""
    name = schema.get("name", "")
    short = name.rsplit(".", 1)[-1]
    if short not in NAMES:
        raise SchemaError(f"schema name {name!r} is not one of {', '.join(NAMES)}")
    Serde(short).check_resolves(schema)
    fp = schema_fingerprint(schema).hex()
    ensure_topics(settings)
    producer = Producer(confluent_config(settings, **{"enable.idempotence": True}))
    errors: list[str] = []
    producer.produce(
        settings.topic("schemas"),
        key=fp.encode(),
        value=json.dumps(schema).encode(),
        on_delivery=lambda err, _m: errors.append(str(err)) if err else None,
    )
    if producer.flush(30) or errors:
        raise BrokerUnavailable(f"could not publish the schema: {errors or 'timed out'}")
    return fp


def registered(settings: Settings, timeout: float = 10.0) -> list[tuple[str, dict[str, Any]]]:
    """Every (fingerprint, schema) on the schemas topic, last write per fingerprint."""
    consumer = Consumer(
        confluent_config(
            settings, **{"group.id": "streamlearn-schemas-list", "enable.auto.commit": False}
        )
    )
    topic = settings.topic("schemas")
    try:
        tp = TopicPartition(topic, 0, OFFSET_BEGINNING)
        _low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
        consumer.assign([tp])
        found: dict[str, dict[str, Any]] = {}
        position = 0
        while position < high:
            msg = consumer.poll(timeout)
            if msg is None:
                break
            if msg.error():
                continue
            position = (msg.offset() or 0) + 1
            try:
                found[(msg.key() or b"").decode()] = json.loads(msg.value() or b"")
            except (ValueError, AttributeError):
                continue
        return sorted(found.items())
    finally:
        consumer.close()
