"""What was logged when a transaction was scored, kept until its outcome arrives (bounded)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(slots=True)
class Scored:
    """The exact features and scores served for one transaction."""

    features: list[float]
    scores: dict[str, float]
    merchant_id: str
    event_time: int


class BoundedMap(Generic[V]):
    """Insertion-ordered map with a size cap: the oldest entries go first (and are counted).

    Holds scored transactions awaiting outcomes (an outcome for one that aged out is looked
    up in ClickHouse instead), outcomes that came before their transaction, and the labels
    already learned from.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, V] = OrderedDict()
        self.evicted = 0

    def put(self, key: str, value: V) -> None:
        self._data[key] = value
        if len(self._data) > self.max_entries:
            self._data.popitem(last=False)
            self.evicted += 1

    def get(self, key: str) -> V | None:
        return self._data.get(key)

    def pop(self, key: str) -> V | None:
        return self._data.pop(key, None) if self._data else None

    def __len__(self) -> int:
        return len(self._data)
