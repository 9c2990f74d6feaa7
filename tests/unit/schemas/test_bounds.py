"""S3: decoding bytes from outside is bounded. Block counts the writer chose (2^62 items of
null, or of booleans/floats/doubles/fixed that fastavro's compiled skip reads past the end),
lying block sizes, deep nesting and oversized messages all become a SchemaError in
milliseconds, which the agents dead-letter. Each hostile decode runs in a forked child so
that a regression fails the test instead of hanging it."""

from __future__ import annotations

import copy
import io
import multiprocessing
import time
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamlearn.schemas import SchemaError, Serde, load_schema
from streamlearn.schemas.bounds import BoundExceeded, Limits, Walker, needs_walk
from streamlearn.schemas.registry import writer_schema
from streamlearn.schemas.serde import MAGIC, default_registry, schema_fingerprint

RECORD = {
    "transaction_id": "tx-1",
    "event_time": 1_700_000_000_000,
    "card_id": "card-7",
    "merchant_id": "m-3",
    "amount": 12.5,
    "currency": "EUR",
    "country": "FR",
    "merchant_category": None,
    "channel": "ecom",
    "device_id": None,
}


def zigzag(n: int) -> bytes:
    """An Avro long: zig-zag, then base-128 varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def with_junk(junk_type: Any) -> dict[str, Any]:
    """Transaction plus an extra field `junk` (unknown to the reader, so fastavro skips it)."""
    schema = copy.deepcopy(load_schema("Transaction"))
    schema["fields"].append({"name": "junk", "type": junk_type})
    return schema


def message(writer: dict[str, Any], junk_bytes: bytes) -> bytes:
    """A single-object message: the genuine record's body, then hand-made bytes for junk."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(load_schema("Transaction")), RECORD)
    return MAGIC + schema_fingerprint(writer) + body.getvalue() + junk_bytes


def decode_in_child(writer: dict[str, Any] | None, data: bytes, timeout: float = 20.0) -> str:
    """Decode as a worker would, in a forked child: 'ok', or the SchemaError's message."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def run() -> None:
        registry = default_registry()
        if writer is not None:
            registry.add(writer)
        try:
            Serde("Transaction", registry).decode(data)
            child.send("ok")
        except SchemaError as exc:
            child.send(f"SchemaError: {exc}")

    proc = ctx.Process(target=run, daemon=True)
    started = time.monotonic()
    proc.start()
    try:
        assert parent.poll(timeout), f"decode still running after {timeout}s: it loops"
        return str(parent.recv())
    finally:
        proc.kill()
        proc.join(5)
        assert time.monotonic() - started < timeout


HUGE = zigzag(2**62)

LOOPING = {  # junk type, junk bytes: each loops fastavro for ever without the walker
    "array<null>, 2^62 items": ({"type": "array", "items": "null"}, HUGE + zigzag(0)),
    "array<boolean> skip past the end": ({"type": "array", "items": "boolean"}, HUGE),
    "array<float> skip past the end": ({"type": "array", "items": "float"}, HUGE),
    "array<double> skip past the end": ({"type": "array", "items": "double"}, HUGE),
    "array<fixed4> skip past the end": (
        {"type": "array", "items": {"type": "fixed", "name": "F4", "size": 4}},
        HUGE,
    ),
    "array<empty record>": (
        {"type": "array", "items": {"type": "record", "name": "Empty", "fields": []}},
        HUGE + zigzag(0),
    ),
}


@pytest.mark.parametrize("kind", LOOPING)
def test_the_unbounded_messages_that_loop_fastavro_are_schema_errors(kind: str) -> None:
    junk_type, junk = LOOPING[kind]
    writer = with_junk(junk_type)
    Serde("Transaction").check_resolves(writer)  # a legal writer schema: registration accepts it
    started = time.monotonic()
    outcome = decode_in_child(writer, message(writer, junk))
    assert outcome.startswith("SchemaError"), outcome
    assert "more than 10000 array/map items" in outcome
    assert time.monotonic() - started < 5


def test_2_to_the_62_nulls_are_refused_in_milliseconds_in_process() -> None:
    writer = with_junk({"type": "array", "items": "null"})
    registry = default_registry()
    registry.add(writer)
    serde = Serde("Transaction", registry)
    data = message(writer, HUGE + zigzag(0))
    started = time.perf_counter()
    with pytest.raises(SchemaError, match="array/map items"):
        serde.decode(data)
    assert time.perf_counter() - started < 0.05


def test_a_block_whose_stated_size_lies_is_refused() -> None:
    writer = with_junk({"type": "array", "items": "long"})
    # A negative count says a byte size follows; -2 would make a seeking reader go back.
    for junk in (
        zigzag(-1) + zigzag(-2) + zigzag(5) + zigzag(0),
        zigzag(-1) + zigzag(7) + zigzag(5) + zigzag(0),
    ):
        outcome = decode_in_child(writer, message(writer, junk))
        assert "states" in outcome or "past the end" in outcome, outcome


def test_an_honest_sized_block_decodes() -> None:
    writer = with_junk({"type": "array", "items": "long"})
    items = zigzag(5) + zigzag(-300)
    junk = zigzag(-2) + zigzag(len(items)) + items + zigzag(0)
    assert decode_in_child(writer, message(writer, junk)) == "ok"


def test_the_item_bound_counts_every_block_and_nesting() -> None:
    nested = {"type": "array", "items": {"type": "array", "items": "null"}}
    writer = with_junk(nested)
    inner = zigzag(5_000) + zigzag(0)
    at_bound = zigzag(1) + inner + zigzag(1) + inner + zigzag(0)  # 2 + 10,000 items... over
    assert "array/map items" in decode_in_child(writer, message(writer, at_bound))
    fits = zigzag(2) + zigzag(4_000) + zigzag(0) + zigzag(4_000) + zigzag(0) + zigzag(0)
    assert decode_in_child(writer, message(writer, fits)) == "ok"


def test_a_map_of_nulls_with_2_to_the_62_entries_is_refused() -> None:
    writer = with_junk({"type": "map", "values": "null"})
    assert "array/map items" in decode_in_child(writer, message(writer, HUGE))


def test_deep_nesting_is_refused() -> None:
    node = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"]}],
    }
    writer = with_junk(node)
    deep = zigzag(1) * 100 + zigzag(0)  # 100 levels of "next is a Node"
    assert "nested deeper than 32" in decode_in_child(writer, message(writer, deep))
    shallow = zigzag(1) * 5 + zigzag(0)
    assert decode_in_child(writer, message(writer, shallow)) == "ok"


def test_a_length_past_the_end_is_refused_before_fastavro() -> None:
    writer = with_junk({"type": "array", "items": "string"})
    data = message(writer, zigzag(1) + zigzag(2**40) + b"abc")
    assert "past the end" in decode_in_child(writer, data)


def test_a_message_over_the_size_bound_is_refused_unread() -> None:
    serde = Serde("Transaction")
    data = serde.encode({**RECORD, "device_id": "d" * 1_100_000})
    with pytest.raises(SchemaError, match="over the 1048576-byte bound for Transaction"):
        serde.decode(data)
    assert serde.decode(serde.encode({**RECORD, "device_id": "d" * 900_000}))["device_id"]


def test_the_contract_inputs_need_no_walk_and_releases_get_a_larger_bound() -> None:
    for name in ("Transaction", "Outcome", "DriftEvent"):
        assert writer_schema(load_schema(name))[1].walker is None, name
    for name in ("Prediction", "ModelRelease"):
        assert writer_schema(load_schema(name))[1].walker is not None, name
    assert Serde("ModelRelease").limits.max_bytes == 64 * 1024 * 1024


def test_needs_walk_sees_references_arrays_and_maps() -> None:
    def parsed(t: Any) -> Any:
        return fastavro.parse_schema(
            {"type": "record", "name": "R", "fields": [{"name": "f", "type": t}]}
        )

    assert not needs_walk(parsed(["null", "string"]))
    assert needs_walk(parsed({"type": "array", "items": "int"}))
    assert needs_walk(parsed({"type": "map", "values": "int"}))
    assert needs_walk(parsed(["null", {"type": "array", "items": "int"}]))


# --- properties: the walker agrees with fastavro on valid data, and never runs long ----------

NESTED = {
    "type": "record",
    "name": "Doc",
    "fields": [
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "counts", "type": {"type": "map", "values": ["null", "long", "double"]}},
        {"name": "grid", "type": {"type": "array", "items": {"type": "array", "items": "boolean"}}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "blob", "type": {"type": "fixed", "name": "Blob", "size": 3}},
        {"name": "nothing", "type": {"type": "array", "items": "null"}},
    ],
}
NESTED_PARSED = fastavro.parse_schema(copy.deepcopy(NESTED))
DOCS = st.fixed_dictionaries(
    {
        "tags": st.lists(st.text(max_size=8), max_size=6),
        "counts": st.dictionaries(
            st.text(max_size=5), st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats())
        ),
        "grid": st.lists(st.lists(st.booleans(), max_size=4), max_size=4),
        "kind": st.sampled_from(["A", "B", "C"]),
        "blob": st.binary(min_size=3, max_size=3),
        "nothing": st.lists(st.none(), max_size=50),
    }
)


def _encode(doc: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, NESTED_PARSED, doc)
    return buf.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_the_walker_accepts_every_valid_datum(doc: dict[str, Any]) -> None:
    Walker(NESTED_PARSED).check(_encode(doc), Limits())


@settings(max_examples=300, deadline=None)
@given(DOCS, st.data())
def test_the_walker_on_mutated_bytes_answers_fast_and_fastavro_follows(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    body = bytearray(_encode(doc))
    for _ in range(data.draw(st.integers(1, 4))):
        if body:
            at = data.draw(st.integers(0, len(body) - 1))
            body[at] = data.draw(st.integers(0, 255))
    started = time.perf_counter()
    try:
        Walker(NESTED_PARSED).check(bytes(body), Limits(max_items=500))
    except BoundExceeded:
        return
    finally:
        assert time.perf_counter() - started < 0.05
    # The walker passed it: fastavro reads the same structure, so it ends where the walker did.
    stream = io.BytesIO(bytes(body))
    try:
        fastavro.schemaless_reader(stream, NESTED_PARSED, None)
    except (ValueError, UnicodeDecodeError, IndexError, EOFError):
        return  # content errors (bad UTF-8, ...) are fine: the structure was bounded
    assert stream.tell() == len(body)


def test_a_walk_costs_little_beside_the_decode() -> None:
    prediction = Serde("Prediction")
    record = {
        "transaction_id": "tx-1",
        "event_time": 1,
        "score": 0.5,
        "model_version": "v1",
        "lightgbm_score": 0.4,
        "river_score": 0.6,
        "scores": {"lightgbm": 0.4, "lr": 0.6, "hst": 0.1},
        "scored_at": 2,
        "card_id": "c",
        "shadow_version": None,
    }
    data = prediction.encode(record)
    walker = prediction.registry.entry(prediction.fingerprint).walker  # type: ignore[union-attr]
    assert walker is not None
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        walker.check(memoryview(data)[10:], prediction.limits)
    per_walk = (time.perf_counter() - started) / n
    assert per_walk < 100e-6, f"{per_walk * 1e6:.1f} µs per walk"
    print(f"walk of a Prediction: {per_walk * 1e6:.1f} µs")
