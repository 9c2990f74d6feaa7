"""Which per-card and per-merchant state keys belong to partitions this worker no longer owns.

Scoring writes the feature table's in-memory dict directly (Faust's per-key partition map is
not filled on that path), so after a rebalance the state of partitions that went elsewhere would
stay in memory for good. Pure: the app deletes what this names, locally only (the changelog
still holds it for the partition's new owner).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from streamlearn.domain.features import CardState


def key_partition(key: str, value: Any) -> int | None:
    """The partition a state entry was last written from, or None if it cannot tell."""
    if key.startswith("m:"):  # "m:<merchant>@<partition>"
        _, _, tail = key.rpartition("@")
        return int(tail) if tail.isdigit() else None
    if key.startswith("c:"):
        if isinstance(value, CardState):
            return value.partition if value.partition >= 0 else None
        if isinstance(value, list | tuple) and len(value) > 7:  # its changelog form
            return int(value[7][0]) if value[7][0] >= 0 else None
    return None


def foreign_keys(state: Mapping[str, Any], assigned: Iterable[int]) -> list[str]:
    """The keys whose partition is known and not among the assigned ones."""
    owned = set(assigned)
    foreign: list[str] = []
    for key, value in state.items():
        partition = key_partition(key, value)
        if partition is not None and partition not in owned:
            foreign.append(key)
    return foreign


def drop_foreign(state: MutableMapping[str, Any], assigned: Iterable[int]) -> int:
    """Delete the entries of partitions not assigned; how many went."""
    foreign = foreign_keys(state, assigned)
    for key in foreign:
        del state[key]
    return len(foreign)
