"""Outcome batches are released for acking only up to what a checkpoint covers."""

from __future__ import annotations

from faust.types import TP

from streamlearn.streams.batch import Batch
from streamlearn.streams.outcome_acks import HeldOutcomes, release
from streamlearn.streams.pending import BoundedMap


class Record:
    def __init__(self, offset: int) -> None:
        self.offset = offset


def batch(partition: int, first: int, last: int) -> Batch:
    return Batch(
        TP("outcomes", partition), [Record(o) for o in range(first, last + 1)], first, last
    )


def test_only_covered_batches_are_released_in_order() -> None:
    held = HeldOutcomes()
    acked: list[tuple[int, int, int]] = []

    def ack(b: Batch) -> None:
        acked.append((b.partition, b.first, b.last))

    for b in (batch(0, 0, 2), batch(0, 3, 4), batch(1, 0, 2)):
        held.hold(b)
    assert len(held) == 8
    everyone = lambda: {TP("outcomes", 0), TP("outcomes", 1)}  # noqa: E731
    assert release(held, {0: 2}, ack, everyone) == 3
    assert acked == [(0, 0, 2)]
    assert release(held, {0: 3}, ack, everyone) == 0  # 3..4 is not covered whole yet
    assert release(held, {0: 2, 1: 0}, ack, everyone) == 0  # nothing twice
    held.forget({0})  # revoked: the next owner reads them again
    assert release(held, {0: 9, 1: 9}, ack, everyone) == 3
    assert acked[-1] == (1, 0, 2) and len(held) == 0


def test_batches_of_partitions_no_longer_assigned_are_not_acked() -> None:
    held = HeldOutcomes()
    acked: list[int] = []
    held.hold(batch(0, 0, 0))
    held.hold(batch(1, 0, 0))
    assert (
        release(
            held, {0: 0, 1: 0}, lambda b: acked.append(b.partition), lambda: {TP("outcomes", 1)}
        )
        == 1
    )
    assert acked == [1] and len(held) == 0


def test_bounded_map_returns_what_the_cap_pushes_out() -> None:
    m: BoundedMap[int] = BoundedMap(2)
    assert m.put("a", 1) is None and m.put("b", 2) is None
    assert m.put("c", 3) == ("a", 1)
    assert m.evicted == 1 and m.get("a") is None
    assert m.oldest(5) == [("b", 2), ("c", 3)] and m.oldest(1) == [("b", 2)]
