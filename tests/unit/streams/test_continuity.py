"""A partition's batches reach their actor as one unbroken run (streams/continuity.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from faust.types import TP

from streamlearn.streams.batch import Batch
from streamlearn.streams.continuity import Continuity

TP0 = TP("t-transactions", 0)


def batch(first: int, start: int, last: int) -> Batch:
    records = [SimpleNamespace(offset=o) for o in range(start, last + 1)]
    return Batch(TP0, records, first, last)


def test_batches_that_follow_on_are_taken_whole() -> None:
    c = Continuity()
    for b in (batch(10, 10, 19), batch(20, 20, 20), batch(21, 23, 30)):  # 21-22 do not exist
        taken, rewind = c.admit(b, committed=10)
        assert taken is b and rewind is None
    assert c.taken[TP0] == 31 and c.lost_batches == 0


def test_a_batch_after_a_lost_one_is_dropped_and_the_partition_read_again_once() -> None:
    c = Continuity()
    c.admit(batch(10, 10, 19), committed=10)
    # 20..29 never reached the actor: what comes next is dropped, and 20 read again once.
    assert c.admit(batch(30, 30, 39), committed=10) == (None, 20)
    assert c.admit(batch(40, 40, 41), committed=10) == (None, None)
    assert c.lost_batches == 2 and c.rewinds == {TP0: 20}
    # Records that start where the re-read does are its own; others are dropped unless
    # fetched after its seek was done (offset 20 may not exist: compaction, control records).
    fetch_before = time.monotonic()
    assert c.pending(TP0, 42, fetch_before)
    assert not c.pending(TP0, 20, fetch_before)
    c.sought(TP0, 20)
    assert c.pending(TP0, 42, fetch_before)  # may have been fetched before the seek
    assert not c.pending(TP0, 21, time.monotonic())
    assert c.resume(TP0) == 20 and c.resume(TP0) is None
    taken, _ = c.admit(batch(20, 20, 45), committed=10)
    assert taken is not None and taken.records[0].offset == 20


def test_the_first_batch_after_an_assignment_must_start_at_the_committed_offset() -> None:
    c = Continuity()
    assert c.admit(batch(300, 300, 310), committed=272) == (None, 272)
    c.forget({TP0})  # the next assignment starts afresh
    assert c.rewinds == {} and c.admit(batch(272, 272, 280), committed=272)[0] is not None


def test_offsets_already_taken_are_cut_away_or_the_batch_dropped() -> None:
    c = Continuity()
    c.admit(batch(0, 0, 9), committed=None)
    assert c.admit(batch(5, 5, 8), committed=None) == (None, None)
    taken, _ = c.admit(batch(5, 5, 14), committed=None)
    assert taken is not None and taken.first == 10
    assert [r.offset for r in taken.records] == list(range(10, 15))
    assert c.repeated_batches == 1 and c.taken[TP0] == 15


def test_without_a_committed_offset_the_first_batch_is_taken_as_it_comes() -> None:
    c = Continuity()
    taken, rewind = c.admit(batch(57, 57, 60), committed=None)
    assert taken is not None and rewind is None
