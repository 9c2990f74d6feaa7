"""Checkpoints: a round trip keeps state and offsets; a foreign or altered file is refused;
ids of any alphabet pack and unpack; the key is private and refused when it is not."""

from __future__ import annotations

import logging
import pickle
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from streamlearn.learners.checkpoint import (
    MAGIC,
    CheckpointRejected,
    checkpoint_key,
    checkpoint_path,
    key_exposure,
    load,
    pack_ids,
    save,
    unpack_ids,
)
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


# -- S2: learned ids in any alphabet -----------------------------------------------------------
@hyp_settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=50))
def test_packed_ids_round_trip_whatever_they_hold(ids: list[str]) -> None:
    assert unpack_ids(pack_ids(ids)) == ids


def test_packed_ids_that_do_not_add_up_are_refused() -> None:
    data = pack_ids(["a\nb", "", "c"])
    assert unpack_ids(data) == ["a\nb", "", "c"]
    for bad in (data[:-1], data + b"x", data[:6], b""):
        with pytest.raises(CheckpointRejected, match="packed ids"):
            unpack_ids(bad)


# -- S15: the checkpoint key -------------------------------------------------------------------
def test_the_key_file_and_checkpoints_are_private(tmp_path: Path) -> None:
    key = checkpoint_key(tmp_path, None)
    assert len(key) == 32 and checkpoint_key(tmp_path, None) == key  # made once, then read
    folder = tmp_path / "checkpoints"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "key").stat().st_mode) == 0o600
    path = checkpoint_path(tmp_path, "w1")
    save(path, {"x": 1}, {0: 1}, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert checkpoint_key(tmp_path, b"configured") == b"configured"  # the setting wins


def test_a_directory_others_could_enter_is_narrowed_to_0700(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    save(folder / "w.ckpt", {"x": 1}, {0: 1}, KEY)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_others_can_read_is_refused_and_replaced(
    tmp_path: Path, mode: int, caplog: pytest.LogCaptureFixture
) -> None:
    old = checkpoint_key(tmp_path, None)
    path = checkpoint_path(tmp_path, "w1")
    save(path, {"x": 1}, {0: 1}, old)
    (tmp_path / "checkpoints" / "key").chmod(mode)
    with caplog.at_level(logging.WARNING, logger="streamlearn.learners.checkpoint"):
        new = checkpoint_key(tmp_path, None)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "refused" in lines[0] and f"{mode:04o}" in lines[0], lines
    assert new != old and stat.S_IMODE((tmp_path / "checkpoints" / "key").stat().st_mode) == 0o600
    with pytest.raises(CheckpointRejected, match="does not verify"):
        load(path, new)  # what the exposed key signed is not trusted any more


def test_a_key_file_in_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    old = checkpoint_key(tmp_path, None)
    (tmp_path / "checkpoints").chmod(0o777)
    assert key_exposure(tmp_path / "checkpoints" / "key") is not None
    assert checkpoint_key(tmp_path, None) != old
