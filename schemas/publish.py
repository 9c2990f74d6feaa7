"""Registering writer schemas: checked, then on the compacted schemas topic and, when one is
configured, in the schema registry under the record's `<topic>-value` subject."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from streamlearn.foundation.errors import BrokerUnavailable
from streamlearn.foundation.kafka import confluent_config, ensure_topics, producer_config
from streamlearn.foundation.settings import Settings
from streamlearn.schemas.confluent import ConfluentRegistry
from streamlearn.schemas.registry import SchemaError
from streamlearn.schemas.serde import check_resolves, contract_name, default_registry


@dataclass(frozen=True)
class Registered:
    """Where a writer schema now lives."""

    fingerprint: str
    subject: str | None = None  # the schema registry's subject and id, if one is configured
    schema_id: int | None = None


def register(settings: Settings, schema: dict[str, Any]) -> Registered:
    """Publish a writer schema if it resolves against the reader schema of the same name and
    its fingerprint names no other schema (built-in or already on the topic)."""
    name = contract_name(schema)
    check_resolves(schema, name)
    fp = default_registry().add(schema).hex()  # a collision with a built-in: refused, offline
    ensure_topics(settings)
    known = default_registry()
    for _fp, other in registered(settings):
        try:
            if isinstance(other, dict):
                known.add(other)
        except SchemaError:
            continue  # an earlier impostor on the topic: workers refuse it too
    known.add(schema)  # refuses a collision with a schema on the topic
    confluent = ConfluentRegistry.from_settings(settings, worker=False)
    subject = schema_id = None
    if confluent is not None:  # the registry checks its own compatibility rule (409 if not)
        subject, schema_id = confluent.subject(name), confluent.register(name, schema)
    producer = Producer(producer_config(settings, **{"enable.idempotence": True}))
    errors: list[str] = []
    producer.produce(
        settings.topic("schemas"),
        key=fp.encode(),
        value=json.dumps(schema).encode(),
        on_delivery=lambda err, _m: errors.append(str(err)) if err else None,
    )
    if producer.flush(30) or errors:
        raise BrokerUnavailable(f"could not publish the schema: {errors or 'timed out'}")
    return Registered(fp, subject, schema_id)


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
        high = _high_watermark(consumer, tp, timeout)
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


def _high_watermark(consumer: Consumer, tp: TopicPartition, timeout: float) -> int:
    """The end offset; a topic created a moment ago may have no leader yet: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=timeout)[1]
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"cannot read {tp.topic}: {exc.args[0].str()}") from exc
            time.sleep(0.2)
