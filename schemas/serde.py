"""Avro single-object encoding (C3 01, CRC-64-AVRO fingerprint, body) with writer-schema lookup.

A reader knows its own schema and any writer schema registered with it; a message is decoded
with the writer schema its fingerprint names and resolved into the reader schema, so a
producer that adds an optional field keeps working once its schema is registered.
"""

from __future__ import annotations

import copy
import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from streamlearn.schemas.resolution import incompatibilities

MAGIC = b"\xc3\x01"
HEADER_LEN = 10
SCHEMA_DIR = Path(__file__).parent
# Earlier versions of the contract schemas: messages they wrote (e.g. releases kept on the
# compacted models topic) must still decode after a field is added.
HISTORY_DIR = SCHEMA_DIR / "history"


class SchemaError(ValueError):
    """A message or schema cannot be decoded, or does not resolve against the reader schema."""


NAMES = {
    "Transaction": "transaction.avsc",
    "Outcome": "outcome.avsc",
    "Prediction": "prediction.avsc",
    "ModelRelease": "model_release.avsc",
    "DriftEvent": "drift_event.avsc",
}


def _strip_logical(schema: Any) -> Any:
    """Drop logicalType so timestamps stay epoch-millis ints (the fingerprint ignores it)."""
    if isinstance(schema, dict):
        return {k: _strip_logical(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_strip_logical(s) for s in schema]
    return schema


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The raw JSON schema of one contract record (Transaction, Outcome, ...)."""
    return json.loads((SCHEMA_DIR / NAMES[name]).read_text())


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint used in single-object encoding."""
    parsed = fastavro.parse_schema(copy.deepcopy(schema))
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


class SchemaRegistry:
    """Writer schemas known to this process, by fingerprint."""

    def __init__(self) -> None:
        self._by_fp: dict[bytes, tuple[str, Any]] = {}

    def add(self, schema: dict[str, Any]) -> bytes:
        fp = schema_fingerprint(schema)
        parsed = fastavro.parse_schema(_strip_logical(copy.deepcopy(schema)))
        self._by_fp[fp] = (schema.get("name", "?"), parsed)
        return fp

    def get(self, fp: bytes) -> Any | None:
        entry = self._by_fp.get(fp)
        return entry[1] if entry else None

    def __contains__(self, fp: bytes) -> bool:
        return fp in self._by_fp

    def __len__(self) -> int:
        return len(self._by_fp)


@cache
def history_schemas() -> tuple[dict[str, Any], ...]:
    """The earlier writer schemas kept in schemas/history (one .avsc per retired version)."""
    return tuple(json.loads(p.read_text()) for p in sorted(HISTORY_DIR.glob("*.avsc")))


def default_registry() -> SchemaRegistry:
    """The current contract schemas and their earlier versions, as writer schemas."""
    reg = SchemaRegistry()
    for schema in history_schemas():
        reg.add(schema)
    for name in NAMES:
        reg.add(load_schema(name))
    return reg


class Serde:
    """Encoder and decoder of one record type (the reader schema) in single-object encoding."""

    def __init__(self, name: str, registry: SchemaRegistry | None = None) -> None:
        self.name = name
        self.registry = registry if registry is not None else default_registry()
        self.schema = load_schema(name)
        self.fingerprint = self.registry.add(self.schema)
        self._parsed = self.registry.get(self.fingerprint)
        self._header = MAGIC + self.fingerprint

    def encode(self, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self._header)
        fastavro.schemaless_writer(buf, self._parsed, record)  # type: ignore[arg-type]
        return buf.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode one message; raise SchemaError with the reason if it cannot be read."""
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) < HEADER_LEN:
            raise SchemaError("not Avro single-object encoding: shorter than its 10-byte header")
        if data[:2] != MAGIC:
            raise SchemaError("not Avro single-object encoding: missing the C3 01 marker")
        fp = bytes(data[2:HEADER_LEN])
        writer = self.registry.get(fp)
        if writer is None:
            raise SchemaError(
                f"unknown schema fingerprint {fp.hex()} (register it: streamlearn schemas register)"
            )
        body = io.BytesIO(data[HEADER_LEN:])
        try:
            if fp == self.fingerprint:
                record = fastavro.schemaless_reader(body, writer, None)
            else:
                record = fastavro.schemaless_reader(body, writer, self._parsed)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise SchemaError(f"cannot decode {self.name}: {type(exc).__name__}: {exc}") from exc
        if body.tell() != len(data) - HEADER_LEN:
            raise SchemaError(f"cannot decode {self.name}: trailing bytes after the record")
        if not isinstance(record, dict):
            raise SchemaError(f"cannot decode {self.name}: not a record")
        return record

    def check_resolves(self, writer_schema: dict[str, Any]) -> None:
        """Raise SchemaError unless every datum written with writer_schema can be read as ours."""
        try:
            fastavro.parse_schema(_strip_logical(copy.deepcopy(writer_schema)))
        except Exception as exc:  # fastavro raises several types for a malformed schema
            raise SchemaError(f"not a valid Avro schema: {exc}") from exc
        problems = incompatibilities(writer_schema, self.schema)
        if problems:
            raise SchemaError(
                f"schema {writer_schema.get('name', '?')} does not resolve against "
                f"{self.name}: {'; '.join(problems[:3])}"
            )
