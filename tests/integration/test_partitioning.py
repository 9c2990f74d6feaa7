"""murmur2 everywhere: our producers put each key where the Java client (and Faust) would.

A topic with 7 partitions, 300 card ids produced with producer_config: the broker's placement
of every key equals the Java default partitioner's (tests/murmur2.py, checked against
Kafka's own vectors). librdkafka's default (CRC32) would disagree for most of them.
"""

from __future__ import annotations

import zlib

from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from streamlearn.foundation.kafka import admin, producer_config
from streamlearn.foundation.settings import Settings
from tests.murmur2 import java_partition

PARTITIONS = 7


def test_our_partition_for_a_key_is_murmur2s(settings: Settings) -> None:
    topic = settings.topic("placement")
    client = admin(settings)  # kept: its futures die with it
    for future in client.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(timeout=30)
    keys = [f"card-{i:05d}".encode() for i in range(300)] + [b"", "Café-€".encode()]
    placed: dict[bytes, int] = {}
    producer = Producer(producer_config(settings, **{"enable.idempotence": True}))
    for key in keys:
        producer.produce(
            topic,
            key=key,
            value=b"x",
            on_delivery=lambda err, msg: (
                placed.__setitem__(msg.key(), msg.partition()) if err is None else None
            ),
        )
    assert producer.flush(30) == 0
    assert len(placed) == len(keys)
    expected = {k: java_partition(k, PARTITIONS) for k in keys}
    assert placed == expected
    crc32_agrees = sum(zlib.crc32(k) % PARTITIONS == p for k, p in expected.items())
    print(f"murmur2: {len(expected)} keys placed as Java would; CRC32 agrees on {crc32_agrees}")
    assert crc32_agrees < len(expected) / 2
