"""The Confluent wire format without a network: framing, settings, and the lookup guard.

The registry client here is a stand-in with the two calls we use (get_schema,
register_schema); tests/integration/test_confluent_format.py runs the real registry and
confluent-kafka's own AvroSerializer/AvroDeserializer.
"""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryError

from streamlearn.foundation.errors import ConfigError
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import SchemaError, Serde, load_schema
from streamlearn.schemas import confluent as confluent_mod
from streamlearn.schemas.confluent import ConfluentRegistry, client_config
from streamlearn.schemas.serde import confluent_id, default_registry

RECORD = {
    "transaction_id": "tx-1",
    "event_time": 1_700_000_000_000,
    "card_id": "card-7",
    "merchant_id": "m-3",
    "amount": 12.5,
    "currency": "EUR",
    "country": None,
    "merchant_category": None,
    "channel": "pos",
    "device_id": None,
}


def upstream_schema() -> dict[str, Any]:
    """An upstream team's Transaction: own namespace, one extra optional field."""
    schema = copy.deepcopy(load_schema("Transaction"))
    schema["namespace"] = "com.acme.payments"
    schema["fields"].append({"name": "terminal", "type": ["null", "string"], "default": None})
    return schema


def framed(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(copy.deepcopy(schema)), record)
    return b"\x00" + schema_id.to_bytes(4, "big") + buf.getvalue()


class Registry:
    """A stand-in for SchemaRegistryClient: schemas by id, a call log, optional failure."""

    def __init__(self, schemas: dict[int, Schema]) -> None:
        self.schemas = schemas
        self.calls: list[int] = []
        self.registered: dict[str, int] = {}
        self.down = False

    def get_schema(self, schema_id: int) -> Schema:
        self.calls.append(schema_id)
        if self.down:
            raise ConnectionRefusedError("connection refused")  # as httpx would, wrapped
        if schema_id not in self.schemas:
            raise SchemaRegistryError(404, 40403, f"Schema {schema_id} not found")
        return self.schemas[schema_id]

    def register_schema(self, subject: str, schema: Schema) -> int:
        self.registered[subject] = 100 + len(self.registered)
        self.schemas[self.registered[subject]] = schema
        return self.registered[subject]


def serde_with(client: Registry, *, output: bool = False, name: str = "Transaction") -> Serde:
    registry = default_registry()
    registry.confluent = ConfluentRegistry(
        client,  # type: ignore[arg-type]
        Settings(topic_prefix="p-").topic,
        output=output,
        url="http://registry",
    )
    return Serde(name, registry)


def avro(schema: dict[str, Any]) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


def test_confluent_framing_is_recognised_and_single_object_still_decodes() -> None:
    client = Registry({7: avro(upstream_schema())})
    serde = serde_with(client)
    record = {**RECORD, "terminal": "T-1"}
    assert confluent_id(framed(7, upstream_schema(), record)) == 7
    assert serde.decode(framed(7, upstream_schema(), record)) == RECORD
    assert serde.decode(serde.encode(RECORD)) == RECORD
    assert serde.encode(RECORD)[:2] == b"\xc3\x01"


def test_an_id_is_fetched_once() -> None:
    client = Registry({7: avro(upstream_schema())})
    serde = serde_with(client)
    for _ in range(50):
        serde.decode(framed(7, upstream_schema(), {**RECORD, "terminal": None}))
    assert client.calls == [7]


def test_our_own_schema_under_an_id_is_read_without_resolution() -> None:
    client = Registry({3: avro(load_schema("Transaction"))})
    assert serde_with(client).decode(framed(3, load_schema("Transaction"), RECORD)) == RECORD


def test_without_a_registry_a_confluent_message_says_which_setting_is_missing() -> None:
    data = framed(7, upstream_schema(), {**RECORD, "terminal": None})
    with pytest.raises(SchemaError, match="STREAMLEARN_SCHEMA_REGISTRY_URL"):
        Serde("Transaction").decode(data)


def test_an_unknown_id_is_remembered_not_asked_for_each_message() -> None:
    client = Registry({})
    serde = serde_with(client)
    data = framed(99, upstream_schema(), {**RECORD, "terminal": None})
    for _ in range(100):
        with pytest.raises(SchemaError, match="schema id 99 is not in the schema registry"):
            serde.decode(data)
    assert client.calls == [99]


def test_new_ids_are_looked_up_at_a_bounded_rate() -> None:
    client = Registry({})
    serde = serde_with(client)
    refused = 0
    for schema_id in range(1000, 1000 + 200):
        with pytest.raises(SchemaError) as info:
            serde.decode(framed(schema_id, upstream_schema(), {**RECORD, "terminal": None}))
        refused += "not looked up" in str(info.value)
    assert len(client.calls) <= 2 * confluent_mod.LOOKUPS_PER_S  # a second boundary at most
    assert refused >= 200 - 2 * confluent_mod.LOOKUPS_PER_S


def test_a_registry_outage_is_not_asked_again_for_a_while() -> None:
    client = Registry({7: avro(upstream_schema())})
    client.down = True
    serde = serde_with(client)
    data = framed(7, upstream_schema(), {**RECORD, "terminal": None})
    with pytest.raises(SchemaError, match="did not answer"):
        serde.decode(data)
    client.down = False
    with pytest.raises(SchemaError, match="not asked again yet"):
        serde.decode(data)
    assert client.calls == [7]


@pytest.mark.parametrize(
    "schema, reason",
    [
        (Schema('{"type": "object"}', "JSON"), "a JSON schema, not Avro"),
        (
            Schema(
                json.dumps(upstream_schema()),
                "AVRO",
                [SchemaReference("com.acme.Money", "money-value", 1)],
            ),
            "references are not supported",
        ),
        (Schema('"string"', "AVRO"), "not an Avro record schema"),
        (
            Schema(json.dumps({**upstream_schema(), "fields": [{"name": "a", "type": "Nope"}]})),
            "not a valid Avro schema",
        ),
    ],
)
def test_schemas_we_cannot_use_are_refused_with_the_reason(schema: Schema, reason: str) -> None:
    serde = serde_with(Registry({5: schema}))
    with pytest.raises(SchemaError, match=reason):
        serde.decode(b"\x00\x00\x00\x00\x05\x00")


def test_an_id_of_another_record_does_not_resolve() -> None:
    outcome = load_schema("Outcome")
    client = Registry({4: avro(outcome)})
    data = framed(4, outcome, {"transaction_id": "t", "is_fraud": True, "event_time": 1})
    with pytest.raises(SchemaError, match="does not resolve against Transaction"):
        serde_with(client).decode(data)
    assert serde_with(client, name="Outcome").decode(data)["is_fraud"] is True


def test_the_bounds_hold_for_registry_schemas_too() -> None:
    schema = upstream_schema()
    schema["fields"].append({"name": "junk", "type": {"type": "array", "items": "null"}})
    count = io.BytesIO()
    fastavro.schemaless_writer(count, fastavro.parse_schema("long"), 2**62)  # a block of 2^62
    data = framed(8, upstream_schema(), {**RECORD, "terminal": None}) + count.getvalue() + b"\0"
    with pytest.raises(SchemaError, match="more than 10000 array/map items"):
        serde_with(Registry({8: avro(schema)})).decode(data)


def test_confluent_output_registers_under_topic_value_and_frames_with_the_id() -> None:
    client = Registry({})
    prediction = serde_with(client, output=True, name="Prediction")
    drift = serde_with(client, output=True, name="DriftEvent")
    transaction = serde_with(client, output=True, name="Transaction")
    assert set(client.registered) == {"p-predictions-value", "p-drift-events-value"}
    record = {
        "transaction_id": "tx-1",
        "event_time": 1,
        "score": 0.25,
        "model_version": "none",
        "lightgbm_score": None,
        "river_score": 0.25,
        "scores": {"lr": 0.25},
        "scored_at": 2,
        "card_id": "c",
        "shadow_version": None,
    }
    data = prediction.encode(record)
    assert confluent_id(data) == client.registered["p-predictions-value"]
    assert prediction.decode(data) == record  # and we read what we write
    assert (
        drift.encode(
            {
                "time": 1,
                "kind": "data",
                "subject": "amount",
                "statistic": 0.3,
                "threshold": 0.2,
                "model_version": "",
                "details": "",
            }
        )[:1]
        == b"\x00"
    )
    assert transaction.encode(RECORD)[:2] == b"\xc3\x01"  # inputs are never ours to frame


def test_settings_give_the_client_auth_tls_and_worker_timeouts(tmp_path) -> None:
    settings = Settings(
        schema_registry_url="https://registry.example:8081",
        schema_registry_username="svc",
        schema_registry_password="s3cret:with:colons",
        schema_registry_ssl_cafile=tmp_path / "ca.pem",
    )
    conf = client_config(settings)
    assert conf["basic.auth.user.info"] == "svc:s3cret:with:colons"
    assert conf["ssl.ca.location"] == str(tmp_path / "ca.pem")
    assert conf["timeout"] <= 5 and conf["max.retries"] == 0
    assert client_config(settings, worker=False)["max.retries"] == 1
    assert "s3cret" not in repr(settings)


def test_a_password_in_the_registry_url_is_masked_when_printed() -> None:
    settings = Settings(schema_registry_url="https://svc:hunter2@registry.example:8081")
    assert "hunter2" not in repr(settings) and "registry.example" in repr(settings)


def test_confluent_output_without_a_registry_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="STREAMLEARN_SCHEMA_REGISTRY_URL"):
        default_registry(Settings(output_format="confluent"))
    assert default_registry(Settings()).confluent is None
