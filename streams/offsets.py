"""Guards against offsets Faust never delivers to an agent (seen around rebalances).

faust-streaming can drop a fetched message while a rebalance suspends the flow, then let
its gap bookkeeping commit past it: a lost event. Each agent checks that its batches
continue its partitions without a hole; on a hole it seeks back and skips the batch, so the
missing offsets are fetched again and nothing beyond them is acked meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


class OffsetGuard:
    """Next expected offset per partition, since the partition was assigned to this worker."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.expected: dict[int, int] = {}
        self._sought: dict[int, tuple[int, int]] = {}
        self.holes = 0

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked: their next batch may legitimately start anywhere."""
        for p in partitions:
            self.expected.pop(p, None)
            self._sought.pop(p, None)

    def admit(self, partition: int, offsets: Sequence[int]) -> int | None:
        """None if the batch continues its partition, else the offset to seek back to.

        Reprocessed offsets (below the expected one) are admitted. A hole that is still there
        after a re-read is a real one (e.g. transaction markers) and is admitted too.
        """
        start = self.expected.get(partition)
        last = start - 1 if start is not None else offsets[0] - 1
        for offset in offsets:
            if offset > last + 1:
                gap = (last + 1, offset)
                if self._sought.get(partition) == gap:
                    log.warning(
                        "%s[%d]: offsets %d..%d do not exist; going on",
                        self.topic,
                        partition,
                        gap[0],
                        gap[1] - 1,
                    )
                else:
                    self._sought[partition] = gap
                    self.holes += 1
                    log.warning(
                        "%s[%d]: offsets %d..%d were not delivered; reading again",
                        self.topic,
                        partition,
                        gap[0],
                        gap[1] - 1,
                    )
                    return gap[0]
            last = max(last, offset)
        self.expected[partition] = last + 1
        self._sought.pop(partition, None)
        return None


async def admit_or_seek(guard: OffsetGuard, events: Sequence) -> bool:
    """True if the batch may be processed; otherwise seek back to the hole and return False."""
    by_partition: dict[int, list[int]] = {}
    for event in events:
        by_partition.setdefault(event.message.partition, []).append(event.message.offset)
    before = dict(guard.expected)
    for partition, offsets in by_partition.items():
        seek_to = guard.admit(partition, offsets)
        if seek_to is not None:
            # Nothing of this batch is processed: the other partitions' events in it will show
            # up as holes of their own next time and be read again too.
            guard.expected = before
            tp = next(e.message.tp for e in events if e.message.partition == partition)
            await events[0].app.consumer.seek(tp, seek_to)
            return False
    return True
