"""A partition's share of one fetch, as the fast path hands it to the partition's actor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP


@dataclass(slots=True)
class Batch:
    """One partition's records of one fetch, in offset order, and the range an ack covers.

    `first` is where the ack starts: the offset after the previous batch of this partition
    (or its committed offset), so offsets that do not exist between batches are covered too.
    """

    tp: TP
    records: Sequence[Any]  # aiokafka ConsumerRecord: .offset, .timestamp, .key, .value
    first: int
    last: int
    message: Any = field(default=None, repr=False)  # the Faust message that carried it
    fetched_at: float = 0.0  # wall time it was handed out (the fetch's part of the latency)

    @property
    def partition(self) -> int:
        return self.tp.partition
