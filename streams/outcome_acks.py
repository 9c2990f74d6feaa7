"""Outcome batches are acked only once a learner checkpoint covers them.

An outcome learned after the last checkpoint lives only in memory: if its offset were
committed and the worker died, the restored learners would never see it again. So the
outcomes agent holds its batches after handing them to learning, and each written checkpoint
acks those at or below the offsets it covers; after a crash, Kafka redelivers everything past
the last checkpoint and the restored learners skip what they already hold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Set
from typing import Any

from streamlearn.streams.batch import Batch


class HeldOutcomes:
    """Per partition, in offset order: the batches learned but not yet checkpointed."""

    def __init__(self) -> None:
        self._held: dict[int, deque[Batch]] = {}

    def hold(self, batch: Batch) -> None:
        self._held.setdefault(batch.partition, deque()).append(batch)

    def covered_by(self, offsets: Mapping[int, int]) -> list[Batch]:
        """Take out the held batches at or below each partition's covered offset."""
        out: list[Batch] = []
        for partition, held in self._held.items():
            last = offsets.get(partition)
            if last is None:
                continue
            while held and held[0].last <= last:
                out.append(held.popleft())
        return out

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: their uncommitted outcomes go to the next owner."""
        for p in partitions:
            self._held.pop(p, None)

    def __len__(self) -> int:
        return sum(len(b.records) for q in self._held.values() for b in q)


def release(
    held: HeldOutcomes,
    offsets: Mapping[int, int],
    ack: Callable[[Batch], Any],
    assigned: Callable[[], Set[Any]],
) -> int:
    """Ack the held batches a written checkpoint covers; returns how many outcomes.

    A batch of a partition revoked meanwhile is dropped: its new owner reads it again.
    """
    current = assigned()
    acked = 0
    for batch in held.covered_by(offsets):
        if batch.tp in current:
            ack(batch)
            acked += len(batch.records)
    return acked
