"""Each partition's batches reach their actor as one unbroken run of offsets, or are read again.

Faust can lose an event between its consumer and an actor without acking it: a stream skips
an event of an older generation, or one read while flow control is suspended, and a rebalance
can start a partition's actor after the conductor routed the partition's first events
elsewhere. Faust's per-event path reads such events again at the next rebalance. The fast
path hands out its next batch from where the lost one ended, so the offsets in between would
be acked by nobody and never scored. So an actor admits a batch only if it follows the last
batch taken from its partition (or the committed offset); one that starts further on means
batches were lost on the way, and the consumer reads the partition again from the first
offset no actor took. One that repeats offsets already taken is cut to what is new.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

from faust.types import TP

from streamlearn.streams.batch import Batch

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Continuity:
    """Per partition: the offset its actor takes next, and the re-reads asked for."""

    taken: dict[TP, int] = field(default_factory=dict)  # after the last batch an actor took
    rewinds: dict[TP, int] = field(default_factory=dict)  # tp -> offset to read again from
    sought_at: dict[TP, float] = field(default_factory=dict)  # tp -> when that seek was done
    lost_batches: int = 0  # batches that did not follow on: their partition was read again
    repeated_batches: int = 0  # batches whose every offset had been taken already

    def admit(self, batch: Batch, committed: int | None) -> tuple[Batch | None, int | None]:
        """The batch as its actor takes it (None: drop it, unacked), and the offset to read
        its partition again from if that was not asked for yet."""
        tp = batch.tp
        expected = self.taken.get(tp, committed)
        if expected is not None and batch.first > expected:
            self.lost_batches += 1
            if self.rewinds.get(tp) == expected:
                return None, None
            log.warning(
                "%s: offsets %d..%d never reached the actor; read again",
                tp,
                expected,
                batch.first - 1,
            )
            self.rewinds[tp] = expected
            self.sought_at.pop(tp, None)
            return None, expected
        if expected is not None and batch.last < expected:
            self.repeated_batches += 1
            return None, None
        if expected is not None and batch.first < expected:
            records = [r for r in batch.records if r.offset >= expected]
            batch = replace(batch, records=records, first=expected)
        self.taken[tp] = batch.last + 1
        return batch, None

    def sought(self, tp: TP, target: int) -> None:
        """The consumer now stands at target again (if that is still the re-read asked for)."""
        if self.rewinds.get(tp) == target:
            self.sought_at[tp] = time.monotonic()

    def pending(self, tp: TP, first: int, fetch_started: float) -> bool:
        """True if tp's records, the first at offset `first`, from a fetch begun at
        fetch_started, are to be dropped: a re-read is asked for, they do not start where it
        does, and they may have been fetched before its seek (a fetch begun later comes from
        where the seek put the consumer: the first offset that still exists)."""
        target = self.rewinds.get(tp)
        if target is None or first == target:
            return False
        done = self.sought_at.get(tp)
        return done is None or done > fetch_started

    def resume(self, tp: TP) -> int | None:
        """The offset a re-read of tp starts at, once its records come (None: none asked)."""
        self.sought_at.pop(tp, None)
        return self.rewinds.pop(tp, None)

    def forget(self, tps: set[TP]) -> None:
        """Partitions revoked or newly assigned start again from their committed offset."""
        for tp in tps:
            self.taken.pop(tp, None)
            self.rewinds.pop(tp, None)
            self.sought_at.pop(tp, None)
