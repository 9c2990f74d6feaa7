"""S13: a fingerprint names one schema. A CRC-64-AVRO collision with Transaction that swaps
card_id and merchant_id is built in milliseconds, and every way in refuses it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import fastavro
import pytest

from streamlearn.schemas import SchemaError, SchemaRegistry, Serde, load_schema
from streamlearn.schemas.serde import admit, default_registry, schema_fingerprint
from tests.unit.schemas.forge import canonical, swapped_transaction

TRANSACTION = load_schema("Transaction")
RECORD = {
    "transaction_id": "tx-1",
    "event_time": 1_700_000_000_000,
    "card_id": "card-7",
    "merchant_id": "merchant-3",
    "amount": 12.5,
    "currency": "EUR",
    "country": None,
    "merchant_category": None,
    "channel": None,
    "device_id": None,
}


@pytest.fixture(scope="module")
def forged() -> dict:
    return swapped_transaction(TRANSACTION)


def test_the_forgery_collides_in_well_under_a_second() -> None:
    started = time.perf_counter()
    schema = swapped_transaction(TRANSACTION)
    assert time.perf_counter() - started < 1.0
    assert schema_fingerprint(schema) == schema_fingerprint(TRANSACTION)
    assert canonical(schema) != canonical(TRANSACTION)
    # It is a real threat: it passes the resolution check, and reading a genuine message with
    # it as the writer schema exchanges card and merchant.
    Serde("Transaction").check_resolves(schema)
    impostor = SchemaRegistry()
    impostor.add(schema)
    body = io.BytesIO(Serde("Transaction").encode(RECORD)[10:])
    decoded = fastavro.schemaless_reader(body, impostor.get(schema_fingerprint(schema)), None)
    assert (decoded["card_id"], decoded["merchant_id"]) == ("merchant-3", "card-7")


def test_the_registry_refuses_a_collision_with_a_built_in(forged: dict) -> None:
    registry = default_registry()
    serde = Serde("Transaction", registry)
    size = len(registry)
    with pytest.raises(SchemaError, match=r"collision.*refused"):
        registry.add(forged)
    with pytest.raises(SchemaError, match="built-in schema"):
        admit(registry, forged)  # the worker's way in, from the schemas topic
    assert len(registry) == size
    assert serde.decode(serde.encode(RECORD)) == RECORD


def test_a_collision_between_two_outside_schemas_keeps_the_first(forged: dict) -> None:
    registry = SchemaRegistry()
    fp = registry.add(TRANSACTION)
    with pytest.raises(SchemaError, match="collision"):
        registry.add(forged)
    assert registry.entry(fp).canonical == canonical(TRANSACTION)  # type: ignore[union-attr]


def test_the_same_schema_twice_is_not_a_collision() -> None:
    registry = default_registry()
    with_doc = {**TRANSACTION, "doc": "another doc: not in the canonical form"}
    assert registry.add(with_doc) == registry.add(TRANSACTION) == schema_fingerprint(TRANSACTION)


def test_a_built_in_takes_its_fingerprint_back_from_an_impostor(forged: dict) -> None:
    registry = SchemaRegistry()
    registry.add(forged)  # there first, e.g. a registry filled before the serdes were built
    serde = Serde("Transaction", registry)
    assert serde.decode(serde.encode(RECORD)) == RECORD
    with pytest.raises(SchemaError):
        registry.add(forged)


def test_schemas_register_refuses_it_with_one_line(forged: dict, tmp_path: Path) -> None:
    path = tmp_path / "forged.avsc"
    path.write_text(json.dumps(forged))
    env = {**os.environ, "STREAMLEARN_KAFKA_BOOTSTRAP": "127.0.0.1:1"}  # never reached
    env.pop("STREAMLEARN_SCHEMA_REGISTRY_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "streamlearn", "schemas", "register", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 6, proc.stderr  # refused
    assert len(lines) == 1, proc.stderr
    assert "collision" in lines[0] and "built-in schema" in lines[0]
    assert "Traceback" not in proc.stderr
