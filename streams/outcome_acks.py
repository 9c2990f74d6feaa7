"""Outcome events are acked only once a learner checkpoint covers them.

An outcome learned after the last checkpoint lives only in memory: if its offset were
committed and the worker died, the restored learners would never see it again. So the
outcomes agent holds its events after learning them, and the checkpoint timer acks those at
or below the offsets the checkpoint it just wrote covers; after a crash, Kafka redelivers
everything past the last checkpoint and the restored learners skip what they already hold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Set
from typing import Any


class HeldOutcomes:
    """Per partition, in offset order: (offset, stream, event) learned but not checkpointed."""

    def __init__(self) -> None:
        self._held: dict[int, deque[tuple[int, Any, Any]]] = {}

    def hold(self, stream: Any, events: Iterable[Any]) -> None:
        for event in events:
            msg = event.message
            self._held.setdefault(msg.partition, deque()).append((msg.offset, stream, event))

    def covered_by(self, offsets: Mapping[int, int]) -> list[tuple[Any, Any]]:
        """Take out the held events at or below each partition's covered offset."""
        out: list[tuple[Any, Any]] = []
        for partition, queue in self._held.items():
            last = offsets.get(partition)
            if last is None:
                continue
            while queue and queue[0][0] <= last:
                _, stream, event = queue.popleft()
                out.append((stream, event))
        return out

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: their uncommitted outcomes go to the next owner."""
        for p in partitions:
            self._held.pop(p, None)

    def __len__(self) -> int:
        return sum(len(q) for q in self._held.values())


async def release(
    held: HeldOutcomes, offsets: Mapping[int, int], assigned: Callable[[], Set[Any]] | None = None
) -> int:
    """Ack the held events a written checkpoint covers; returns how many acked.

    assigned() gives the partitions this worker holds now: an event of a batch that was being
    learned while its partition was revoked is dropped, its new owner reads it again.
    """
    taken = held.covered_by(offsets)
    current = assigned() if assigned is not None else None
    acked = 0
    for stream, event in taken:
        if current is not None and event.message.tp not in current:
            continue
        await stream.ack(event)
        acked += 1
    return acked
