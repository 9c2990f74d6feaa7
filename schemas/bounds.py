"""Bounds on decoding bytes from outside: a pre-scan of an Avro body against its writer schema.

Avro arrays and maps carry block counts the writer chooses, and fastavro trusts them: an
`array<null>` block of 2^62 items loops for ever (null items take no bytes), and so does
*skipping* an `array<boolean|float|double|fixed>` field the reader lacks, because fastavro's
compiled skip reads past the end of the data without raising. Refusing zero-size items and
capping the message size would leave those skips, and a valid 1 MB array still costs ~0.3 s.
So a writer schema that holds an array, a map or a named-type reference gets a `Walker` that
reads the body's structure first, counting every item and checking every length against the
bytes left, and refuses it over `Limits` before fastavro sees it. Its cost is bounded by the
limits, not by the counts the writer wrote. Schemas without arrays, maps or references (the
contract's Transaction and Outcome) decode in time bounded by the schema itself: no walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Fixed-width primitives and their sizes on the wire.
_WIDTH = {"null": 0, "boolean": 1, "float": 4, "double": 8}
_VARINT_MAX = 10  # a zig-zag long never needs more than 10 bytes


class BoundExceeded(ValueError):
    """The body breaks a bound or its own structure; the reason says which."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one message may cost to decode."""

    max_bytes: int = 1_048_576  # Kafka's default message size: transactions are ~200 B
    max_items: int = 10_000  # array items plus map entries, all blocks and nestings together
    max_depth: int = 32  # nested records, unions, arrays and maps


def needs_walk(schema: Any) -> bool:
    """Whether data of this parsed schema can repeat (arrays, maps, named references)."""
    if isinstance(schema, str):
        return schema not in _WIDTH and schema not in ("int", "long", "string", "bytes")
    if isinstance(schema, list):
        return any(needs_walk(branch) for branch in schema)
    kind = schema["type"]
    if kind in ("array", "map"):
        return True
    if kind in ("record", "error"):
        return any(needs_walk(f["type"]) for f in schema["fields"])
    if isinstance(kind, dict | list):
        return needs_walk(kind)
    return False


class Walker:
    """Checks one body against a parsed writer schema without building any value."""

    def __init__(self, parsed: Any) -> None:
        self.schema = parsed
        # parse_schema defines each named type once and refers to it by full name after.
        self.named: dict[str, Any] = dict(parsed.get("__named_schemas", {}))

    def check(self, body: bytes | memoryview, limits: Limits) -> None:
        """Raise BoundExceeded unless body is exactly one datum within the limits."""
        scan = _Scan(memoryview(body), self.named, limits)
        scan.walk(self.schema, 0)
        if scan.pos != len(scan.data):
            raise BoundExceeded("trailing bytes after the record")


class _Scan:
    """One pass over one body: a cursor and the items counted so far."""

    def __init__(self, data: memoryview, named: dict[str, Any], limits: Limits) -> None:
        self.data, self.named, self.limits = data, named, limits
        self.pos = 0
        self.items = 0

    def long(self) -> int:
        data, pos = self.data, self.pos
        end = min(len(data), pos + _VARINT_MAX)
        result = shift = 0
        while pos < end:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos = pos
                return (result >> 1) ^ -(result & 1)
            shift += 7
        if end == len(data):
            raise BoundExceeded("truncated: the data ends inside a number")
        raise BoundExceeded("a number longer than 10 bytes")

    def skip(self, n: int) -> None:
        if n < 0 or n > len(self.data) - self.pos:
            raise BoundExceeded(f"a length of {n} bytes runs past the end of the data")
        self.pos += n

    def walk(self, schema: Any, depth: int) -> None:
        if depth > self.limits.max_depth:
            raise BoundExceeded(f"nested deeper than {self.limits.max_depth} levels")
        if isinstance(schema, str):
            if schema in _WIDTH:
                self.skip(_WIDTH[schema])
            elif schema in ("int", "long"):
                self.long()
            elif schema in ("string", "bytes"):
                self.skip(self.long())
            else:
                self.walk(self.named[schema], depth + 1)
            return
        if isinstance(schema, list):
            index = self.long()
            if not 0 <= index < len(schema):
                raise BoundExceeded(f"union branch {index} of {len(schema)}")
            self.walk(schema[index], depth + 1)
            return
        self._complex(schema, depth)

    def _complex(self, schema: dict[str, Any], depth: int) -> None:
        kind = schema["type"]
        if kind in ("record", "error"):
            for field in schema["fields"]:
                self.walk(field["type"], depth + 1)
        elif kind == "array":
            self._blocks(schema["items"], depth, keyed=False)
        elif kind == "map":
            self._blocks(schema["values"], depth, keyed=True)
        elif kind == "fixed":
            self.skip(schema["size"])
        elif kind == "enum":
            index = self.long()
            if not 0 <= index < len(schema["symbols"]):
                raise BoundExceeded(f"enum symbol {index} of {len(schema['symbols'])}")
        else:  # a primitive written as {"type": ...}, e.g. with a logicalType
            self.walk(kind, depth)

    def _blocks(self, item: Any, depth: int, *, keyed: bool) -> None:
        while count := self.long():
            size = None
            if count < 0:  # the spec: a negative count is followed by the block's byte size
                count, size = -count, self.long()
            self.items += count
            if self.items > self.limits.max_items:
                raise BoundExceeded(
                    f"more than {self.limits.max_items} array/map items (a block says {count})"
                )
            start = self.pos
            for _ in range(count):
                if keyed:
                    self.skip(self.long())
                self.walk(item, depth + 1)
            # fastavro may seek by the stated size instead of reading the items: both must agree.
            if size is not None and size != self.pos - start:
                raise BoundExceeded(f"a block states {size} bytes but holds {self.pos - start}")
