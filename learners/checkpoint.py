"""Learner state on disk, signed: HMAC-SHA256 over the covered offsets and the pickled state.

File layout: MAGIC, the 32-byte HMAC, a 4-byte big-endian length, a JSON header (the outcome
offsets the state covers: partition -> last learned offset, and when it was written), then
the pickle. The HMAC is checked before anything is unpickled: a file this deployment did not
write (or one that was altered) is refused with CheckpointRejected.

The key is the deployment's own checkpoint key (STREAMLEARN_CHECKPOINT_KEY), else a random key
in `<state dir>/checkpoints/key`; never the model signing key, since whoever can sign a model
could otherwise write a pickle every worker runs. Key and checkpoints are 0600 in a 0700
directory; a key file others can read (or replace) is not trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import pickle
import secrets
import stat
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
MAGIC = b"SLCKPT1\n"
KEY_FILE = "key"


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
    """Write atomically (temp file 0600, fsync, rename) in a 0700 directory; returns the size."""
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a temp file left by an older version may have had another mode
    with os.fdopen(fd, "wb") as f:
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


# -- where checkpoints live, and with which key ---------------------------------------------
def checkpoint_path(state_dir: Path, worker_id: str) -> Path:
    return state_dir / "checkpoints" / f"{worker_id}.ckpt"


def private_dir(path: Path) -> Path:
    """Create the directory 0700, or narrow an existing one of ours to 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)
    return path


def key_exposure(path: Path) -> str | None:
    """Why a key file cannot be trusted (readable by others, owned by someone else, in a
    directory others may write to), or None."""
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return f"it is readable or writable by group/others (mode {mode:04o}, must be 0600)"
    if st.st_uid != os.getuid():
        return f"it belongs to uid {st.st_uid}, not to this worker's uid {os.getuid()}"
    dir_mode = stat.S_IMODE(path.parent.stat().st_mode)
    if dir_mode & 0o022:
        return f"its directory is writable by group/others (mode {dir_mode:04o})"
    return None


def checkpoint_key(state_dir: Path, key: bytes | None) -> bytes:
    """The configured checkpoint key, else the deployment's random key file (made if missing).

    A key file others could read or replace is refused (one WARNING line): a new random key
    replaces it, so the checkpoints signed with the exposed one no longer verify and the
    learners start from scratch.
    """
    if key:
        return key
    path = state_dir / "checkpoints" / KEY_FILE
    if path.exists():
        exposed = key_exposure(path)
        if exposed is None:
            return path.read_bytes()
        log.warning(
            "checkpoint key %s refused: %s; its checkpoints are not trusted, a new key replaces "
            "it and the learners start from scratch (or set STREAMLEARN_CHECKPOINT_KEY)",
            path,
            exposed,
        )
        path.unlink()
    private_dir(path.parent)
    new = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(new)
    return new


# -- learned ids: an encoding that holds any id ---------------------------------------------
def pack_ids(ids: Sequence[str]) -> bytes:
    """Ids as one byte string: count, little-endian uint32 lengths, then the UTF-8 bytes.

    Length-prefixed, so any id round-trips (newlines, NULs, lone surrogates), and compact to
    pickle: one bytes object instead of one string per id.
    """
    encoded = [i.encode("utf-8", "surrogatepass") for i in ids]
    lengths = np.fromiter((len(b) for b in encoded), dtype="<u4", count=len(encoded))
    return struct.pack(">I", len(encoded)) + lengths.tobytes() + b"".join(encoded)


def unpack_ids(data: bytes) -> list[str]:
    """The ids pack_ids wrote; CheckpointRejected if the bytes do not add up."""
    if len(data) < 4:
        raise CheckpointRejected("packed ids: truncated")
    (count,) = struct.unpack_from(">I", data)
    start = 4 + 4 * count
    if len(data) < start:
        raise CheckpointRejected("packed ids: truncated length table")
    ends = np.cumsum(np.frombuffer(data, dtype="<u4", count=count, offset=4), dtype=np.int64)
    blob = memoryview(data)[start:]
    if (int(ends[-1]) if count else 0) != len(blob):
        raise CheckpointRejected("packed ids: lengths do not match the data")
    starts = np.concatenate(([0], ends[:-1])) if count else ends
    return [
        bytes(blob[s:e]).decode("utf-8", "surrogatepass")
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


def _now_ms() -> int:
    return int(time.time() * 1000)
