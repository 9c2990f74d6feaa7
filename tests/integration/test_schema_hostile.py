"""Hostile writer schemas and unbounded messages against a running worker (issue 10, S3, S13).

Before the worker starts, the schemas topic holds, written straight onto it as an attacker
with write access would: a schema that collides with Transaction's fingerprint and swaps
card_id and merchant_id, and one that does not resolve (amount as a string). Legal writer
schemas with an `array<null>` and an `array<double>` field are registered the normal way.
Then one message per writer schema goes in among valid transactions, the unbounded ones with
a block count of 2^62. The worker must refuse both hostile schemas when it loads them,
dead-letter the three bad messages within seconds, stay alive, and score every valid
transaction with its own card (not the merchant).
"""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import pytest

from streamlearn.foundation.kafka import ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import SchemaError, Serde, load_schema
from streamlearn.schemas.publish import register
from streamlearn.schemas.serde import MAGIC, schema_fingerprint
from streamlearn.tools.processes import WorkerProcess
from tests.integration.kafka_helpers import consume_all, produce, wait_until
from tests.integration.test_pipeline import predictions, simulated
from tests.unit.schemas.forge import swapped_transaction

TXN = Serde("Transaction")


def with_field(name: str, avro_type: Any) -> dict[str, Any]:
    schema = copy.deepcopy(load_schema("Transaction"))
    schema["fields"].append({"name": name, "type": avro_type, "default": []})
    return schema


NULLS = with_field("junk", {"type": "array", "items": "null"})
DOUBLES = with_field("readings", {"type": "array", "items": "double"})
AMOUNT_STRING = copy.deepcopy(load_schema("Transaction"))
for _f in AMOUNT_STRING["fields"]:
    if _f["name"] == "amount":
        _f["type"] = "string"


def long_bytes(n: int) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema("long"), n)
    return buf.getvalue()


def written_with(schema: dict[str, Any], record: dict[str, Any], tail: bytes = b"") -> bytes:
    """A single-object message under schema's fingerprint: record's fields, then tail."""
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(load_schema("Transaction")), record)
    return MAGIC + schema_fingerprint(schema) + body.getvalue() + tail


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        yield proc
    finally:
        proc.stop(timeout=30)


def test_hostile_schemas_and_unbounded_blocks(
    settings: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    ensure_topics(settings)
    forged = swapped_transaction(load_schema("Transaction"))
    schemas_topic = settings.topic("schemas")
    produce(
        settings,
        schemas_topic,
        [
            (schema_fingerprint(s).hex().encode(), json.dumps(s).encode())
            for s in (forged, AMOUNT_STRING)
        ],
    )
    assert register(settings, NULLS).fingerprint == schema_fingerprint(NULLS).hex()
    assert register(settings, DOUBLES).fingerprint == schema_fingerprint(DOUBLES).hex()
    worker.start()

    txns = simulated(40, seed=7, cards=40)
    huge = long_bytes(2**62)
    bad = {
        "2^62 nulls": written_with(NULLS, {**txns[0], "transaction_id": "bad-1"}, huge + b"\0"),
        "2^62 doubles, skipped": written_with(
            DOUBLES, {**txns[0], "transaction_id": "bad-2"}, huge
        ),
        "refused schema": MAGIC + schema_fingerprint(AMOUNT_STRING) + b"\x02",
    }
    messages = [(t["card_id"].encode(), TXN.encode(t)) for t in txns[:20]]
    messages += [(b"hostile", value) for value in bad.values()]
    # A legal message under the array<null> schema: an empty array decodes and is scored.
    fine = {**txns[20], "transaction_id": "fine-nulls"}
    messages.append((b"c", written_with(NULLS, fine, b"\0")))
    messages += [(t["card_id"].encode(), TXN.encode(t)) for t in txns[20:]]
    sent_at = time.time()
    produce(settings, settings.topic("transactions"), messages)

    def letters() -> list[Any]:
        found = consume_all(settings, settings.topic("dead-letters"))
        return found if len(found) >= len(bad) else []

    found = wait_until(letters, timeout=60, what="3 dead letters")
    status = worker.wait_for("transactions", len(txns) + 1, timeout=60)
    assert worker.proc is not None and worker.proc.poll() is None, "the worker stopped"

    errors = sorted(letter.headers["error"].decode() for letter in found)
    assert len(found) == len(bad), errors
    assert all(letter.headers["stage"] == b"decode" for letter in found)
    assert sum("more than 10000 array/map items" in e for e in errors) == 2, errors
    assert sum("unknown schema fingerprint" in e for e in errors) == 1, errors
    assert {letter.value for letter in found} == set(bad.values())
    slowest = max(int(letter.headers["failed_at"]) / 1000 - sent_at for letter in found)
    assert slowest < 15, f"dead-lettered {slowest:.1f}s after sending"

    # Every valid transaction scored once, with its own card: the forged schema never served.
    got = {p["transaction_id"]: p for p in predictions(settings)}
    expected = {t["transaction_id"]: t for t in [*txns, fine]}
    assert set(got) == set(expected)
    assert all(got[i]["card_id"] == t["card_id"] for i, t in expected.items())
    log = (tmp_path / "worker.log").read_text()
    assert "refusing the schema" in log and "collision" in log
    print(
        f"hostile schemas: {len(found)} dead letters, the slowest {slowest:.2f}s after sending; "
        f"{len(got)} predictions; worker alive; status transactions={status['transactions']}"
    )


def test_register_refuses_a_collision_with_a_schema_already_on_the_topic(
    settings: Settings,
) -> None:
    v2 = with_field("tags", {"type": "array", "items": "string"})
    register(settings, v2)
    forged = swapped_transaction(v2)  # collides with v2, not with any built-in
    assert schema_fingerprint(forged) == schema_fingerprint(v2)
    with pytest.raises(SchemaError, match=r"collision.*refused"):
        register(settings, forged)
    assert register(settings, v2).fingerprint == schema_fingerprint(v2).hex()  # same: fine
