"""Writer schemas known to one process, by CRC-64-AVRO fingerprint, refusing collisions.

A fingerprint names a schema, it does not authenticate one: CRC-64 is linear, so a schema
with a chosen fingerprint (say, Transaction's, with card_id and merchant_id swapped) is found
in well under a second. So a fingerprint keeps the first canonical form it was given: a
second, different one is refused, and the built-in schemas of the contract always win.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from streamlearn.schemas.bounds import Walker, needs_walk

if TYPE_CHECKING:
    from streamlearn.schemas.confluent import ConfluentRegistry

log = logging.getLogger(__name__)


class SchemaError(ValueError):
    """A message or schema cannot be decoded, or does not resolve against the reader schema."""


@dataclass(frozen=True, slots=True)
class WriterSchema:
    """One usable writer schema: fastavro's parsed form and, if its data can repeat, a walker."""

    name: str
    canonical: str
    parsed: Any
    walker: Walker | None


def strip_logical(schema: Any) -> Any:
    """Drop logicalType so timestamps stay epoch-millis ints (the fingerprint ignores it)."""
    if isinstance(schema, dict):
        return {k: strip_logical(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [strip_logical(s) for s in schema]
    return schema


def writer_schema(schema: dict[str, Any]) -> tuple[bytes, WriterSchema]:
    """The fingerprint and usable form of a JSON schema; SchemaError if it is not valid Avro."""
    try:
        canonical = to_parsing_canonical_form(fastavro.parse_schema(copy.deepcopy(schema)))
        parsed = fastavro.parse_schema(strip_logical(copy.deepcopy(schema)))
    except Exception as exc:  # fastavro raises several types for a malformed schema
        raise SchemaError(f"not a valid Avro schema: {exc}") from exc
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    name = str(schema.get("name", "?"))
    return fp, WriterSchema(name, canonical, parsed, Walker(parsed) if needs_walk(parsed) else None)


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint used in single-object encoding."""
    return writer_schema(schema)[0]


class SchemaRegistry:
    """Writer schemas known to this process, by fingerprint."""

    def __init__(self) -> None:
        self._by_fp: dict[bytes, WriterSchema] = {}
        self._builtin: set[bytes] = set()
        # Set by default_registry(settings) when a Confluent schema registry is configured.
        self.confluent: ConfluentRegistry | None = None

    def add(self, schema: dict[str, Any], *, builtin: bool = False) -> bytes:
        """Know a writer schema; SchemaError if its fingerprint names another schema already."""
        fp, entry = writer_schema(schema)
        known = self._by_fp.get(fp)
        if known is not None and known.canonical != entry.canonical:
            if not builtin or fp in self._builtin:
                raise SchemaError(
                    f"schema {entry.name} has fingerprint {fp.hex()}, which already names "
                    f"{'built-in ' if fp in self._builtin else ''}schema {known.name} with "
                    "another canonical form (a CRC-64 collision): refused"
                )
            # A contract schema arriving after an impostor takes its fingerprint back.
            log.error("schema %s held the fingerprint %s of %s", known.name, fp.hex(), entry.name)
            known = None
        if known is None:
            self._by_fp[fp] = entry
        if builtin:
            self._builtin.add(fp)
        return fp

    def entry(self, fp: bytes) -> WriterSchema | None:
        return self._by_fp.get(fp)

    def get(self, fp: bytes) -> Any | None:
        """fastavro's parsed form of the writer schema with this fingerprint."""
        entry = self._by_fp.get(fp)
        return entry.parsed if entry else None

    def __contains__(self, fp: bytes) -> bool:
        return fp in self._by_fp

    def __len__(self) -> int:
        return len(self._by_fp)
