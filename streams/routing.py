"""Whether Faust's conductor hands a partition's events to a live stream; repaired if not.

Faust registers an isolated-partition actor's stream with its conductor only once the actor
starts iterating, which can be after a rebalance rebuilt the conductor's partition index. The
index then lacks the partition, and the partition's old handler still feeds the stream of the
actor that the previous rebalance stopped: each of the partition's events is lost, unacked,
until the next rebalance. The fast path hands out a partition's batches only once it is routed.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from faust.types import TP


def routed(conductor: Any, tp: TP, assigned: Set[TP]) -> bool:
    """True if tp's events reach a registered stream. If not, the conductor's index is rebuilt
    from the streams registered now, which routes tp once its new actor's stream is."""
    if _live(conductor, tp):
        return True
    index = conductor._tp_index
    index.clear()
    for topic in conductor._topics:
        if topic.active_partitions is not None:  # an isolated partition's actor
            for owned in topic.active_partitions & assigned:
                index[owned].add(topic)
        else:
            for other in assigned:
                if other.topic in topic.topics:
                    index[other].add(topic)
    conductor._update_callback_map()
    return _live(conductor, tp)


def _live(conductor: Any, tp: TP) -> bool:
    channels = conductor._tp_index.get(tp)
    return bool(channels) and any(c in conductor._topics for c in channels)
