"""The local broker against itself: idempotent `up`, the contract's topics, a round trip."""

from __future__ import annotations

import time
from uuid import uuid4

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ConfigResource

from streamlearn.foundation.kafka import MODELS_MAX_BYTES, admin, confluent_config, ensure_topics
from streamlearn.foundation.settings import TOPICS, Settings
from streamlearn.tools import broker


def test_up_is_idempotent(kafka_settings: Settings) -> None:
    before = broker.pid(kafka_settings)
    assert before is not None and broker.is_running(kafka_settings)

    started = time.monotonic()
    assert broker.up(kafka_settings) == kafka_settings.kafka_bootstrap
    assert time.monotonic() - started < 5
    assert broker.pid(kafka_settings) == before


def test_up_reuses_a_broker_it_did_not_start(settings: Settings) -> None:
    # `settings` has its own state dir: no pid file there, but the port answers.
    assert broker.up(settings) == settings.kafka_bootstrap
    assert not broker.is_running(settings)
    assert broker.down(settings) is False


def test_ensure_topics_creates_the_contract_topics(settings: Settings) -> None:
    ensure_topics(settings)
    ensure_topics(settings)  # idempotent

    client = admin(settings)
    topics = client.list_topics(timeout=10).topics
    for name in TOPICS:
        assert settings.topic(name) in topics
    assert len(topics[settings.topic("transactions")].partitions) == settings.partitions

    resources = [ConfigResource("topic", settings.topic(n)) for n in ("models", "schemas")]
    for resource, future in client.describe_configs(resources).items():
        config = future.result(timeout=10)
        assert config["cleanup.policy"].value == "compact", resource.name


def _consume_one(settings: Settings, topic: str) -> tuple[bytes | None, bytes | None, list]:
    consumer = Consumer(
        confluent_config(
            settings,
            **{"group.id": f"g-{uuid4().hex}", "auto.offset.reset": "earliest"},
        )
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            return msg.key(), msg.value(), msg.headers() or []
        raise AssertionError(f"nothing arrived on {topic} within 30 s")
    finally:
        consumer.close()


def test_produce_and_consume_one_message(settings: Settings) -> None:
    ensure_topics(settings)
    topic = settings.topic("transactions")
    producer = Producer(confluent_config(settings))
    producer.produce(topic, key=b"card-1", value=b"\xc3\x01payload", headers=[("h", b"v")])
    assert producer.flush(10) == 0

    assert _consume_one(settings, topic) == (b"card-1", b"\xc3\x01payload", [("h", b"v")])


def test_a_big_model_release_fits(settings: Settings) -> None:
    ensure_topics(settings)
    topic = settings.topic("models")
    value = bytes(range(256)) * (20 * 1024 * 1024 // 256)  # 20 MiB, above Kafka's 1 MB default
    producer = Producer(confluent_config(settings, **{"message.max.bytes": MODELS_MAX_BYTES}))
    producer.produce(topic, key=b"champion", value=value)
    assert producer.flush(30) == 0

    key, got, _ = _consume_one(settings, topic)
    assert key == b"champion" and got == value
