"""Single-object Avro encoding: round trips, the spec's header, and SchemaError for bad input."""

from __future__ import annotations

import copy
import io
import json
import math
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamlearn.schemas import SchemaError, SchemaRegistry, Serde, load_schema
from streamlearn.schemas.serde import HISTORY_DIR, MAGIC, NAMES, schema_fingerprint

RECORD_NAMES = tuple(NAMES)
SERDES = {name: Serde(name) for name in RECORD_NAMES}

TEXT = st.text(max_size=40)
DOUBLE = st.floats(allow_nan=True, allow_infinity=True)
LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def _strategy(avro_type: Any) -> st.SearchStrategy:
    """Values of one Avro type of the contract schemas (primitives, nullable unions, ...)."""
    if isinstance(avro_type, list):
        return st.one_of(*(_strategy(t) for t in avro_type))
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        if kind == "array":
            return st.lists(_strategy(avro_type["items"]), max_size=5)
        if kind == "map":
            return st.dictionaries(TEXT, _strategy(avro_type["values"]), max_size=5)
        if kind == "record":
            fields = avro_type["fields"]
            return st.fixed_dictionaries({f["name"]: _strategy(f["type"]) for f in fields})
        return _strategy(kind)  # a primitive with a logicalType
    return {
        "null": st.none(),
        "string": TEXT,
        "bytes": st.binary(max_size=200),
        "boolean": st.booleans(),
        "long": LONG,
        "double": DOUBLE,
    }[avro_type]


def records(name: str) -> st.SearchStrategy[dict[str, Any]]:
    fields = load_schema(name)["fields"]
    return st.fixed_dictionaries({f["name"]: _strategy(f["type"]) for f in fields})


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (a double may be NaN on the wire)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


def transaction(**overrides: Any) -> dict[str, Any]:
    record = {
        "transaction_id": "t-1",
        "event_time": 1_767_225_600_000,
        "card_id": "card-1",
        "merchant_id": "m-1",
        "amount": 12.5,
        "currency": "EUR",
        "country": "FR",
        "merchant_category": None,
        "channel": "ecom",
        "device_id": None,
    }
    return {**record, **overrides}


SAMPLES: dict[str, dict[str, Any]] = {
    "Transaction": transaction(device_id="dev-42"),
    "Outcome": {"transaction_id": "t-1", "is_fraud": True, "event_time": 1_767_225_600_000},
    "Prediction": {
        "transaction_id": "t-1",
        "event_time": 1_767_225_600_000,
        "score": 0.25,
        "model_version": "v1",
        "lightgbm_score": 0.3,
        "river_score": None,
        "scores": {"lightgbm": 0.3, "river_lr": 0.1},
        "scored_at": 1_767_225_600_042,
        "card_id": "card-1",
        "shadow_version": None,
    },
    "ModelRelease": {
        "name": "fraud",
        "version": "v20260101T000000-abcdef",
        "created_at": 1_767_225_600_000,
        "role": "shadow",
        "model_format": "lightgbm-text",
        "model": b"tree\nversion=v4\n",
        "sha256": "0" * 64,
        "signature": None,
        "feature_names": ["amount", "card_count_1h"],
        "train_start": 1_767_000_000_000,
        "train_end": 1_767_100_000_000,
        "metrics": {"holdout_auc": 0.9},
        "reason": "test",
    },
    "DriftEvent": {
        "time": 1_767_225_600_000,
        "kind": "concept",
        "subject": "lightgbm",
        "statistic": 0.09,
        "threshold": 0.03,
        "model_version": "",
        "details": "log loss 0.0300 -> 0.0900 after 1234 labels (ADWIN delta=0.002)",
    },
}


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification writes it (Schema Fingerprints)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


@pytest.mark.parametrize("name", RECORD_NAMES)
def test_round_trip_of_generated_records(name: str) -> None:
    serde = SERDES[name]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records(name))
    def check(record: dict[str, Any]) -> None:
        decoded = serde.decode(serde.encode(record))
        assert same(decoded, record), (decoded, record)

    check()


@pytest.mark.parametrize("name", RECORD_NAMES)
def test_header_is_c3_01_and_the_little_endian_crc64_avro_fingerprint(name: str) -> None:
    serde = SERDES[name]
    canonical = to_parsing_canonical_form(fastavro.parse_schema(copy.deepcopy(load_schema(name))))
    expected = crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")) == expected
    assert serde.fingerprint == expected == schema_fingerprint(load_schema(name))
    data = serde.encode(SAMPLES[name])
    assert data[:2] == b"\xc3\x01" and data[2:10] == expected


def test_fingerprints_differ_between_record_types() -> None:
    assert len({s.fingerprint for s in SERDES.values()}) == len(SERDES)


@pytest.mark.parametrize("name", RECORD_NAMES)
def test_random_bytes_raise_only_schema_error(name: str) -> None:
    serde = SERDES[name]

    @settings(max_examples=150, deadline=None)
    @given(st.binary(max_size=120))
    def check(data: bytes) -> None:
        with pytest.raises(SchemaError):
            serde.decode(data)

    check()


@pytest.mark.parametrize("name", RECORD_NAMES)
def test_random_body_after_a_valid_header_decodes_or_raises_schema_error(name: str) -> None:
    serde = SERDES[name]

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=200))
    def check(body: bytes) -> None:
        try:
            record = serde.decode(MAGIC + serde.fingerprint + body)
        except SchemaError:
            return
        assert isinstance(record, dict)

    check()


def test_non_bytes_and_short_input_are_schema_errors() -> None:
    serde = SERDES["Transaction"]
    for data in (b"", MAGIC, MAGIC + serde.fingerprint[:7], "text", None, 42):
        with pytest.raises(SchemaError):
            serde.decode(data)  # type: ignore[arg-type]


def test_memoryview_and_bytearray_decode() -> None:
    serde = SERDES["Transaction"]
    data = serde.encode(transaction())
    assert serde.decode(bytearray(data)) == transaction()
    assert serde.decode(memoryview(data)) == transaction()


@pytest.mark.parametrize("name", RECORD_NAMES)
def test_every_truncation_is_a_schema_error(name: str) -> None:
    serde = SERDES[name]
    data = serde.encode(SAMPLES[name])
    for n in range(len(data)):
        with pytest.raises(SchemaError):
            serde.decode(data[:n])


def test_unknown_fingerprint_is_a_schema_error_that_says_how_to_register() -> None:
    serde = SERDES["Transaction"]
    data = serde.encode(transaction())
    forged = MAGIC + bytes(8) + data[10:]
    with pytest.raises(SchemaError, match=r"unknown schema fingerprint 0{16} .*register"):
        serde.decode(forged)


def test_wrong_magic_is_a_schema_error() -> None:
    serde = SERDES["Transaction"]
    data = serde.encode(transaction())
    with pytest.raises(SchemaError, match="C3 01"):
        serde.decode(b"\xc3\x02" + data[2:])


def test_trailing_bytes_are_a_schema_error() -> None:
    serde = SERDES["Outcome"]
    data = serde.encode({"transaction_id": "t", "is_fraud": True, "event_time": 5})
    with pytest.raises(SchemaError, match="trailing bytes"):
        serde.decode(data + b"\x00")


def test_a_record_of_another_type_is_not_decoded_as_this_one() -> None:
    """Each reader knows every contract schema; an Outcome read as a Transaction cannot resolve."""
    outcome = SERDES["Outcome"].encode({"transaction_id": "t", "is_fraud": False, "event_time": 1})
    with pytest.raises(SchemaError):
        SERDES["Transaction"].decode(outcome)


def test_encode_rejects_a_record_missing_a_required_field() -> None:
    record = transaction()
    del record["card_id"]
    with pytest.raises((ValueError, TypeError, KeyError)):
        SERDES["Transaction"].encode(record)


def _writer_with_extra_field() -> dict[str, Any]:
    writer = copy.deepcopy(load_schema("Transaction"))
    writer["fields"].append({"name": "risk_hint", "type": ["null", "string"], "default": None})
    return writer


def _encode_with(writer: dict[str, Any], record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(copy.deepcopy(writer)), record)
    return MAGIC + schema_fingerprint(writer) + buf.getvalue()


def test_added_optional_field_decodes_into_the_reader_schema_once_registered() -> None:
    serde = Serde("Transaction")
    writer = _writer_with_extra_field()
    data = _encode_with(writer, {**transaction(), "risk_hint": "high"})
    with pytest.raises(SchemaError, match="unknown schema fingerprint"):
        serde.decode(data)
    fp = serde.registry.add(writer)
    assert fp == data[2:10] and fp != serde.fingerprint
    assert serde.decode(data) == transaction()
    serde.check_resolves(writer)


def test_a_registry_shared_between_serdes_serves_them_all() -> None:
    from streamlearn.schemas.serde import default_registry

    registry = default_registry()
    txn, outcome = Serde("Transaction", registry), Serde("Outcome", registry)
    writer = _writer_with_extra_field()
    registry.add(writer)
    assert txn.decode(_encode_with(writer, {**transaction(), "risk_hint": None})) == transaction()
    assert outcome.registry is registry


def test_an_empty_registry_passed_in_is_the_one_used() -> None:
    registry = SchemaRegistry()
    serde = Serde("Transaction", registry)
    assert serde.registry is registry
    writer = _writer_with_extra_field()
    registry.add(writer)
    assert serde.decode(_encode_with(writer, {**transaction(), "risk_hint": "x"})) == transaction()


def test_removed_field_with_a_reader_default_resolves() -> None:
    writer = copy.deepcopy(load_schema("Transaction"))
    writer["fields"] = [f for f in writer["fields"] if f["name"] != "device_id"]
    serde = Serde("Transaction")
    serde.check_resolves(writer)
    serde.registry.add(writer)
    record = {k: v for k, v in transaction(device_id=None).items() if k != "device_id"}
    assert serde.decode(_encode_with(writer, record)) == transaction(device_id=None)


@pytest.mark.parametrize("field", ["card_id", "amount", "event_time"])
def test_dropping_a_required_field_without_default_is_rejected(field: str) -> None:
    writer = copy.deepcopy(load_schema("Transaction"))
    writer["fields"] = [f for f in writer["fields"] if f["name"] != field]
    with pytest.raises(SchemaError, match="does not resolve against Transaction"):
        SERDES["Transaction"].check_resolves(writer)


def test_incompatible_type_change_is_rejected() -> None:
    writer = copy.deepcopy(load_schema("Transaction"))
    for f in writer["fields"]:
        if f["name"] == "amount":
            f["type"] = "string"
    with pytest.raises(SchemaError):
        SERDES["Transaction"].check_resolves(writer)


def test_unparseable_writer_schema_is_a_schema_error() -> None:
    with pytest.raises(SchemaError):
        SERDES["Transaction"].check_resolves({"type": "record", "name": "Transaction"})


def test_widened_union_is_always_rejected() -> None:
    writer = copy.deepcopy(load_schema("Transaction"))
    for f in writer["fields"]:
        if f["name"] == "country":
            f["type"] = ["null", "string", "long"]
    for _ in range(30):  # each call accepts it about 2 times in 3
        with pytest.raises(SchemaError):
            SERDES["Transaction"].check_resolves(writer)


def test_a_release_of_the_previous_schema_decodes_without_reference_bins():
    # Releases on an existing deployment's compacted models topic were written before
    # reference_bins existed; schemas/history keeps that writer schema known by fingerprint.
    old = json.loads((HISTORY_DIR / "model_release.v1.avsc").read_text())
    assert "reference_bins" not in {f["name"] for f in old["fields"]}
    serde = SERDES["ModelRelease"]
    assert schema_fingerprint(old) != serde.fingerprint
    record = {
        "name": "fraud",
        "version": "v20250101T000000-abcdef",
        "created_at": 1_735_689_600_000,
        "role": "champion",
        "model_format": "lightgbm-text",
        "model": b"tree",
        "sha256": "00",
        "signature": None,
        "feature_names": ["amount"],
        "train_start": 1,
        "train_end": 2,
        "metrics": {"holdout_ap": 0.5},
        "reason": "old",
    }
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(copy.deepcopy(old)), record)
    decoded = serde.decode(MAGIC + schema_fingerprint(old) + body.getvalue())
    assert decoded == {**record, "reference_bins": {}, "rollback": None}
