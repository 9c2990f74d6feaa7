"""Bounded insertion-ordered maps, and the record of an outcome parked for its transaction."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(slots=True)
class Parked:
    """An outcome that came before its transaction was scored, waiting for it."""

    is_fraud: bool
    outcome_ms: int  # the outcome's event time
    parked_ms: int  # wall clock when it was parked
    partition: int
    offset: int


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

    def put(self, key: str, value: V) -> tuple[str, V] | None:
        """Insert; returns the (key, value) pushed out by the cap, if any."""
        self._data[key] = value
        if len(self._data) > self.max_entries:
            self.evicted += 1
            return self._data.popitem(last=False)
        return None

    def get(self, key: str) -> V | None:
        return self._data.get(key)

    def pop(self, key: str) -> V | None:
        return self._data.pop(key, None) if self._data else None

    def oldest(self, n: int) -> list[tuple[str, V]]:
        """Up to n entries, oldest first (a copy: the map may change meanwhile)."""
        out: list[tuple[str, V]] = []
        for item in self._data.items():
            if len(out) >= n:
                break
            out.append(item)
        return out

    def newest(self, n: int) -> list[tuple[str, V]]:
        """Up to n entries, the newest, oldest first."""
        out = list(islice(reversed(self._data.items()), n))
        out.reverse()
        return out

    def __len__(self) -> int:
        return len(self._data)
