"""Outcome events are released for acking only up to what a checkpoint covers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from streamlearn.streams.outcome_acks import HeldOutcomes, release
from streamlearn.streams.pending import BoundedMap


def event(partition: int, offset: int) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(partition=partition, offset=offset))


class Stream:
    def __init__(self) -> None:
        self.acked: list[tuple[int, int]] = []

    async def ack(self, e: SimpleNamespace) -> bool:
        self.acked.append((e.message.partition, e.message.offset))
        return True


def test_only_covered_offsets_are_released_in_order() -> None:
    held = HeldOutcomes()
    stream = Stream()
    held.hold(stream, [event(0, o) for o in range(5)] + [event(1, o) for o in range(3)])
    assert len(held) == 8
    assert asyncio.run(release(held, {0: 2})) == 3
    assert stream.acked == [(0, 0), (0, 1), (0, 2)]
    assert asyncio.run(release(held, {0: 2, 1: 0})) == 1  # nothing twice
    held.forget({0})  # revoked: the next owner reads them again
    assert asyncio.run(release(held, {0: 9, 1: 9})) == 2
    assert stream.acked[-2:] == [(1, 1), (1, 2)]
    assert len(held) == 0


def test_events_of_partitions_no_longer_assigned_are_not_acked() -> None:
    held = HeldOutcomes()
    stream = Stream()
    events = [event(0, 0), event(1, 0)]
    for e in events:
        e.message.tp = ("outcomes", e.message.partition)
    held.hold(stream, events)
    assert asyncio.run(release(held, {0: 0, 1: 0}, lambda: {("outcomes", 1)})) == 1
    assert stream.acked == [(1, 0)] and len(held) == 0


def test_bounded_map_returns_what_the_cap_pushes_out() -> None:
    m: BoundedMap[int] = BoundedMap(2)
    assert m.put("a", 1) is None and m.put("b", 2) is None
    assert m.put("c", 3) == ("a", 1)
    assert m.evicted == 1 and m.get("a") is None
    assert m.oldest(5) == [("b", 2), ("c", 3)] and m.oldest(1) == [("b", 2)]
