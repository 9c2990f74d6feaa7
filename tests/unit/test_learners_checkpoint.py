"""Checkpoints: a round trip keeps state and offsets; a foreign or altered file is refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from streamlearn.learners.checkpoint import MAGIC, CheckpointRejected, load, save
from streamlearn.learners.registry import build_learners

KEY = b"k" * 32


def test_round_trip_keeps_learners_and_offsets(tmp_path: Path) -> None:
    learners = build_learners("lr,hat,hst", ("a", "b"))
    learners[0].learn([1.0, 2.0], True)
    path = tmp_path / "ckpt" / "w.ckpt"
    save(path, {"learners": learners}, {0: 41, 3: 7}, KEY)
    state, offsets = load(path, KEY)
    assert offsets == {0: 41, 3: 7}
    assert state["learners"][0].learned == 1
    assert [m.name for m in state["learners"]] == ["river_lr", "river_hat", "river_hst"]


def test_refuses_another_key_and_any_altered_byte(tmp_path: Path) -> None:
    path = tmp_path / "w.ckpt"
    save(path, {"x": 1}, {0: 1}, KEY)
    with pytest.raises(CheckpointRejected, match="does not verify"):
        load(path, b"other-key")
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointRejected):
        load(path, KEY)


def test_never_unpickles_an_unsigned_payload(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    body = b"\x00\x00\x00\x02{}" + pickle.dumps(print)
    path.write_bytes(MAGIC + b"\x00" * 32 + body)
    with pytest.raises(CheckpointRejected):
        load(path, KEY)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointRejected, match="not a streamlearn checkpoint"):
        load(path, KEY)
    assert issubclass(CheckpointRejected, ValueError)
