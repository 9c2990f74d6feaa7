"""Learner state on disk, signed: HMAC-SHA256 over the covered offsets and the pickled state.

File layout: MAGIC, the 32-byte HMAC, a 4-byte big-endian length, a JSON header (the outcome
offsets the state covers: partition -> last learned offset, and when it was written), then
the pickle. The HMAC is checked before anything is unpickled: a file this deployment did not
write (or one that was altered) is refused with CheckpointRejected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import struct
import time
from pathlib import Path
from typing import Any

MAGIC = b"SLCKPT1\n"


class CheckpointRejected(ValueError):
    """A checkpoint that is not ours, was altered, or is not a checkpoint at all."""


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


def dumps(state: Any, offsets: dict[int, int], key: bytes) -> bytes:
    """The signed checkpoint bytes of a state and the outcome offsets it covers."""
    if not key:
        raise ValueError("a checkpoint needs a non-empty signing key")
    header = json.dumps(
        {"offsets": {str(p): int(o) for p, o in offsets.items()}, "written_ms": _now_ms()}
    ).encode()
    body = struct.pack(">I", len(header)) + header + pickle.dumps(state, protocol=5)
    return MAGIC + _mac(key, body) + body


def write_bytes(path: Path, data: bytes) -> int:
    """Write atomically (temp file, fsync, rename); returns the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return len(data)


def save(path: Path, state: Any, offsets: dict[int, int], key: bytes) -> int:
    """Sign and write a checkpoint; returns the bytes written."""
    return write_bytes(path, dumps(state, offsets, key))


def load(path: Path, key: bytes) -> tuple[Any, dict[int, int]]:
    """(state, offsets) from a checkpoint whose HMAC verifies; CheckpointRejected otherwise."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 36:
        raise CheckpointRejected(f"{path} is not a streamlearn checkpoint")
    mac = data[len(MAGIC) : len(MAGIC) + 32]
    body = data[len(MAGIC) + 32 :]
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise CheckpointRejected(
            f"{path}: signature does not verify (written with another key, or altered); "
            "delete it to start the learners from scratch"
        )
    (length,) = struct.unpack(">I", body[:4])
    header = json.loads(body[4 : 4 + length])
    state = pickle.loads(body[4 + length :])  # verified above: written by this deployment
    return state, {int(p): int(o) for p, o in header["offsets"].items()}


def _now_ms() -> int:
    return int(time.time() * 1000)


def pack_ids(items: list[tuple[str, bool]]) -> bytes:
    """Learned ids and their labels, each id length-prefixed: any content round-trips (an id
    holding a newline or a NUL cannot shift the ids after it)."""
    out = bytearray()
    for txn_id, label in items:
        raw = txn_id.encode()
        out += struct.pack(">I?", len(raw), bool(label)) + raw
    return bytes(out)


def unpack_ids(data: bytes) -> list[tuple[str, bool]]:
    """The (id, label) pairs of pack_ids."""
    items: list[tuple[str, bool]] = []
    pos = 0
    while pos < len(data):
        length, label = struct.unpack_from(">I?", data, pos)
        pos += 5
        items.append((data[pos : pos + length].decode(), label))
        pos += length
    return items
