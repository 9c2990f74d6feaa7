"""The local schema registry (Apicurio, Confluent-compatible API) against confluent-kafka's own
schema-registry client: the wire format's round trip, BACKWARD compatibility, a refused version.
"""

from __future__ import annotations

import json
import struct
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streamlearn.tools import registry_local
from tests.integration.conftest import REGISTRY_BUILD_DIR

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "schemas" / "transaction.avsc").read_text()


@pytest.fixture
def client(registry: tuple[str, Path]) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry[0]})


def transaction() -> dict[str, object]:
    return {
        "transaction_id": f"tx-{uuid4().hex[:8]}",
        "event_time": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "card_id": "card-1",
        "merchant_id": "m-9",
        "amount": 12.5,
        "currency": "EUR",
        "country": "FR",
        "merchant_category": None,
        "channel": "ecom",
        "device_id": None,
    }


def with_field(schema: str, field: dict[str, object]) -> str:
    parsed = json.loads(schema)
    parsed["fields"].append(field)
    return json.dumps(parsed)


def test_up_is_idempotent(registry: tuple[str, Path]) -> None:
    url, state = registry
    pid = (state / "registry" / "registry.pid").read_text()
    started = time.monotonic()
    assert registry_local.up(REGISTRY_BUILD_DIR, int(url.split(":")[2].split("/")[0]), state) == url
    assert time.monotonic() - started < 5
    assert (state / "registry" / "registry.pid").read_text() == pid
    assert url.endswith("/apis/ccompat/v6")


def test_global_compatibility_is_backward(client: SchemaRegistryClient) -> None:
    assert client.get_compatibility() == "BACKWARD"


def test_avro_round_trip_in_the_confluent_wire_format(client: SchemaRegistryClient) -> None:
    topic = f"t{uuid4().hex[:8]}-transactions"
    ctx = SerializationContext(topic, MessageField.VALUE)
    record = transaction()

    payload = AvroSerializer(client, SCHEMA)(record, ctx)
    assert payload is not None

    latest = client.get_latest_version(f"{topic}-value")
    magic, schema_id = struct.unpack(">bI", payload[:5])
    assert (magic, schema_id) == (0, latest.schema_id)
    assert f"{topic}-value" in client.get_subjects()
    assert AvroDeserializer(client)(payload, ctx) == record


def test_an_incompatible_version_is_refused(client: SchemaRegistryClient) -> None:
    subject = f"t{uuid4().hex[:8]}-transactions-value"
    first = client.register_schema(subject, Schema(SCHEMA, "AVRO"))

    # A required field without a default: new readers could not read the old records.
    breaking = Schema(with_field(SCHEMA, {"name": "risk", "type": "double"}), "AVRO")
    assert client.test_compatibility(subject, breaking) is False
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(subject, breaking)
    assert info.value.http_status_code == 409

    # The same field with a default is a BACKWARD-compatible second version.
    field = {"name": "risk", "type": ["null", "double"], "default": None}
    compatible = Schema(with_field(SCHEMA, field), "AVRO")
    assert client.test_compatibility(subject, compatible) is True
    second = client.register_schema(subject, compatible)
    assert second != first
    assert client.get_versions(subject) == [1, 2]
