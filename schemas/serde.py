"""The contract records on the wire: Avro single-object encoding (C3 01, CRC-64-AVRO fingerprint,
body) and, when a schema registry is configured, the Confluent wire format (00, schema id, body).

A reader knows its own schema and the writer schemas registered with it; a message is decoded
with the writer schema its header names, within the bounds of schemas/bounds.py, and resolved
into the reader schema, so a producer that adds an optional field keeps working once its
schema is registered.
"""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastavro

from streamlearn.foundation.kafka import MODELS_MAX_BYTES
from streamlearn.schemas.bounds import BoundExceeded, Limits
from streamlearn.schemas.registry import (
    SchemaError,
    SchemaRegistry,
    WriterSchema,
    schema_fingerprint,
    writer_schema,
)
from streamlearn.schemas.resolution import incompatibilities

if TYPE_CHECKING:
    from streamlearn.foundation.settings import Settings

__all__ = ["SchemaError", "SchemaRegistry", "Serde", "default_registry", "schema_fingerprint"]

MAGIC = b"\xc3\x01"
HEADER_LEN = 10
# The Confluent wire format: a zero byte, then the registry's schema id (4 bytes, big-endian).
CONFLUENT_MAGIC = 0
CONFLUENT_HEADER_LEN = 5
SCHEMA_DIR = Path(__file__).parent
# Earlier versions of the contract schemas: messages they wrote (e.g. releases kept on the
# compacted models topic) must still decode after a field is added.
HISTORY_DIR = SCHEMA_DIR / "history"

NAMES = {
    "Transaction": "transaction.avsc",
    "Outcome": "outcome.avsc",
    "Prediction": "prediction.avsc",
    "ModelRelease": "model_release.avsc",
    "DriftEvent": "drift_event.avsc",
}
# Every record fits Kafka's default 1 MB message with at most 10,000 array/map items, except
# a model release: the booster's text, one map entry per metric and per feature's bins.
LIMITS = {"ModelRelease": Limits(max_bytes=MODELS_MAX_BYTES, max_items=1_000_000)}
DEFAULT_LIMITS = Limits()


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The raw JSON schema of one contract record (Transaction, Outcome, ...)."""
    return json.loads((SCHEMA_DIR / NAMES[name]).read_text())


@cache
def history_schemas() -> tuple[dict[str, Any], ...]:
    """The earlier writer schemas kept in schemas/history (one .avsc per retired version)."""
    return tuple(json.loads(p.read_text()) for p in sorted(HISTORY_DIR.glob("*.avsc")))


def default_registry(settings: Settings | None = None) -> SchemaRegistry:
    """The contract schemas and their earlier versions, and the schema registry settings name."""
    reg = SchemaRegistry()
    for name in NAMES:
        reg.add(load_schema(name), builtin=True)
    for schema in history_schemas():
        reg.add(schema, builtin=True)
    if settings is not None and (
        settings.schema_registry_url or settings.output_format != "single-object"
    ):
        # Only then: confluent-kafka's registry client takes ~0.7 s to import.
        from streamlearn.schemas.confluent import ConfluentRegistry

        reg.confluent = ConfluentRegistry.from_settings(settings)
    return reg


def confluent_id(data: bytes | bytearray | memoryview) -> int | None:
    """The schema id of a Confluent-framed message, None if it is not one."""
    if len(data) < CONFLUENT_HEADER_LEN or data[0] != CONFLUENT_MAGIC:
        return None
    return int.from_bytes(data[1:CONFLUENT_HEADER_LEN], "big")


def contract_name(schema: dict[str, Any]) -> str:
    """The contract record a writer schema claims to write (its unqualified name)."""
    name = str(schema.get("name", "")) if isinstance(schema, dict) else ""
    short = name.rsplit(".", 1)[-1]
    if short not in NAMES:
        raise SchemaError(f"schema name {name!r} is not one of {', '.join(NAMES)}")
    return short


def check_resolves(writer: dict[str, Any], reader_name: str) -> None:
    """Raise SchemaError unless every datum written with writer can be read as reader_name."""
    writer_schema(writer)  # parses, or SchemaError
    problems = incompatibilities(writer, load_schema(reader_name))
    if problems:
        raise SchemaError(
            f"schema {writer.get('name', '?')} does not resolve against "
            f"{reader_name}: {'; '.join(problems[:3])}"
        )


def admit(registry: SchemaRegistry, schema: dict[str, Any]) -> bytes:
    """Add a writer schema from outside once it resolves against the record it names."""
    check_resolves(schema, contract_name(schema))
    return registry.add(schema)


class Serde:
    """Encoder and decoder of one record type (the reader schema)."""

    def __init__(self, name: str, registry: SchemaRegistry | None = None) -> None:
        self.name = name
        self.registry = registry if registry is not None else default_registry()
        self.schema = load_schema(name)
        self.fingerprint = self.registry.add(self.schema, builtin=True)
        own = self.registry.entry(self.fingerprint)
        assert own is not None  # added just above
        self._parsed, self._canonical = own.parsed, own.canonical
        self.limits = LIMITS.get(name, DEFAULT_LIMITS)
        confluent = self.registry.confluent
        # With STREAMLEARN_OUTPUT_FORMAT=confluent, Prediction and DriftEvent carry the id the
        # registry gave our schema; the body is the same either way.
        header = confluent.output_header(name, self.schema) if confluent else None
        self._header = header or MAGIC + self.fingerprint

    def encode(self, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self._header)
        fastavro.schemaless_writer(buf, self._parsed, record)
        return buf.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode one message in either framing; raise SchemaError with the reason if it cannot."""
        if not isinstance(data, bytes | bytearray | memoryview) or not data:
            raise SchemaError("not Avro: no bytes")
        if len(data) > self.limits.max_bytes:
            raise SchemaError(
                f"message of {len(data)} bytes is over the {self.limits.max_bytes}-byte bound "
                f"for {self.name}"
            )
        if data[:2] == MAGIC:
            if len(data) < HEADER_LEN:
                raise SchemaError("not single-object encoding: shorter than its 10-byte header")
            fp = bytes(data[2:HEADER_LEN])
            entry = self.registry.entry(fp)
            if entry is None:
                raise SchemaError(
                    f"unknown schema fingerprint {fp.hex()} "
                    "(register it: streamlearn schemas register)"
                )
            return self._read(data, HEADER_LEN, entry, own=fp == self.fingerprint)
        schema_id = confluent_id(data)
        if schema_id is None:
            raise SchemaError(
                "not Avro single-object encoding: missing the C3 01 marker "
                "(nor the Confluent wire format: 00 and a 4-byte schema id)"
            )
        if self.registry.confluent is None:
            raise SchemaError(
                f"Confluent wire format (schema id {schema_id}) but no schema registry is "
                "configured: set STREAMLEARN_SCHEMA_REGISTRY_URL"
            )
        entry = self.registry.confluent.writer_for(schema_id, self.name, self.schema)
        own = entry.canonical == self._canonical
        return self._read(data, CONFLUENT_HEADER_LEN, entry, own=own)

    def _read(self, data: Any, start: int, writer: WriterSchema, *, own: bool) -> dict[str, Any]:
        body = memoryview(data)[start:]
        if writer.walker is not None:
            try:
                writer.walker.check(body, self.limits)
            except (BoundExceeded, KeyError, TypeError) as exc:
                raise SchemaError(f"cannot decode {self.name}: {exc}") from exc
        stream = io.BytesIO(body)
        try:
            reader = None if own else self._parsed
            record = fastavro.schemaless_reader(stream, writer.parsed, reader)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise SchemaError(f"cannot decode {self.name}: {type(exc).__name__}: {exc}") from exc
        if stream.tell() != len(body):
            raise SchemaError(f"cannot decode {self.name}: trailing bytes after the record")
        if not isinstance(record, dict):
            raise SchemaError(f"cannot decode {self.name}: not a record")
        return record

    def check_resolves(self, writer: dict[str, Any]) -> None:
        """Raise SchemaError unless every datum written with writer can be read as ours."""
        check_resolves(writer, self.name)
