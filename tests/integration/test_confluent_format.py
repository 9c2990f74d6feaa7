"""The Confluent wire format in and out, against the real local registry and broker (issue 12).

Upstream is a plain confluent-kafka Producer with Confluent's AvroSerializer and its own
Transaction schema (another namespace, one more optional field): none of our code. A worker
with STREAMLEARN_SCHEMA_REGISTRY_URL and STREAMLEARN_OUTPUT_FORMAT=confluent scores those
messages beside single-object ones, and downstream a plain Consumer with AvroDeserializer
reads `predictions`: again none of our code. `schemas register` goes to the registry too.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streamlearn.foundation.errors import RegistryUnavailable
from streamlearn.foundation.kafka import ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import SchemaError, Serde, load_schema
from streamlearn.schemas.publish import register
from streamlearn.tools.processes import WorkerProcess
from tests.integration.kafka_helpers import produce
from tests.integration.test_pipeline import simulated

UPSTREAM = copy.deepcopy(load_schema("Transaction"))
UPSTREAM["namespace"] = "com.acme.payments"
UPSTREAM["fields"].append({"name": "terminal_id", "type": ["null", "string"], "default": None})


@pytest.fixture
def confluent(settings: Settings, registry: tuple[str, Path]) -> Settings:
    return settings.with_overrides(schema_registry_url=registry[0], output_format="confluent")


def upstream_send(url: str, bootstrap: str, topic: str, txns: list[dict[str, Any]]) -> None:
    """What an upstream team runs: confluent-kafka and Confluent's serializer, nothing of ours."""
    client = SchemaRegistryClient({"url": url})
    serialize = AvroSerializer(client, json.dumps(UPSTREAM))
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    ctx = SerializationContext(topic, MessageField.VALUE)
    for t in txns:
        record = {
            **t,
            "event_time": datetime.fromtimestamp(t["event_time"] / 1000, UTC),
            "terminal_id": "T-42",
        }
        producer.produce(topic, key=t["card_id"].encode(), value=serialize(record, ctx))
    assert producer.flush(30) == 0


def downstream_read(url: str, bootstrap: str, topic: str, n: int) -> list[dict[str, Any]]:
    """What a downstream team runs: a Consumer and Confluent's deserializer, nothing of ours."""
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": url}))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"downstream-{uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    ctx = SerializationContext(topic, MessageField.VALUE)
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + 90
    try:
        while len(out) < n and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append(deserialize(msg.value(), ctx))
    finally:
        consumer.close()
    return out


def test_confluent_in_and_out(confluent: Settings, tmp_path: Path) -> None:
    url, bootstrap = confluent.schema_registry_url or "", confluent.kafka_bootstrap
    ensure_topics(confluent)
    worker = WorkerProcess(confluent, tmp_path / "worker.log").start()
    try:
        txns = simulated(60, seed=12, cards=30)
        upstream_send(url, bootstrap, confluent.topic("transactions"), txns[:40])
        # Single-object messages still decode beside them (the contract's default framing).
        ours = Serde("Transaction")
        produce(
            confluent,
            confluent.topic("transactions"),
            [(t["card_id"].encode(), ours.encode(t)) for t in txns[40:]],
        )
        worker.wait_for("transactions", len(txns), timeout=90)
        got = downstream_read(url, bootstrap, confluent.topic("predictions"), len(txns))
        status = worker.status()
    finally:
        worker.stop(timeout=30)

    by_id = {p["transaction_id"]: p for p in got}
    assert len(got) == len(txns) and set(by_id) == {t["transaction_id"] for t in txns}
    for t in txns:
        p = by_id[t["transaction_id"]]
        assert 0.0 <= p["score"] <= 1.0
        assert p["card_id"] == t["card_id"]
        assert p["event_time"] == datetime.fromtimestamp(t["event_time"] / 1000, UTC)
        assert p["model_version"] == "none"
    assert sum((status.get("dead_letters") or {}).values()) == 0

    client = SchemaRegistryClient({"url": url})
    subjects = set(client.get_subjects())
    prefix = confluent.topic_prefix
    assert {f"{prefix}transactions-value", f"{prefix}predictions-value"} <= subjects
    served = json.loads(client.get_latest_version(f"{prefix}predictions-value").schema.schema_str)
    assert served["name"].rsplit(".", 1)[-1] == "Prediction"
    print(f"confluent format: {len(txns)} in (40 Confluent, 20 single-object), {len(got)} out")


def test_schemas_register_goes_to_the_registry(confluent: Settings) -> None:
    settings = confluent.with_overrides(output_format="single-object")
    v2 = copy.deepcopy(load_schema("Transaction"))
    v2["fields"].append({"name": "risk_hint", "type": ["null", "string"], "default": None})
    done = register(settings, v2)
    assert done.subject == f"{settings.topic_prefix}transactions-value"
    assert done.schema_id is not None
    client = SchemaRegistryClient({"url": settings.schema_registry_url or ""})
    assert client.get_schema(done.schema_id).schema_str is not None

    # Resolves against our reader, but the registry's BACKWARD rule refuses it: one clear error.
    v3 = copy.deepcopy(v2)
    v3["fields"][-1] = {"name": "risk_hint", "type": "long", "default": 0}
    with pytest.raises(SchemaError, match=r"the schema registry refused Transaction under .*"):
        register(settings, v3)


def test_an_unreachable_registry_is_one_line(settings: Settings) -> None:
    dead = settings.with_overrides(schema_registry_url="http://127.0.0.1:9")
    v2 = copy.deepcopy(load_schema("Transaction"))
    v2["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    with pytest.raises(RegistryUnavailable, match="did not answer") as info:
        register(dead, v2)
    assert "\n" not in str(info.value)
