"""State of partitions this worker no longer owns is found by key (merchants) or by the
partition a card's last event came from, in both the live and the changelog form."""

from __future__ import annotations

from streamlearn.domain.features import CardState, MerchantState
from streamlearn.streams.state_bounds import drop_foreign, foreign_keys, key_partition


def test_each_kind_of_entry_names_its_partition() -> None:
    assert key_partition("m:shop-1@3", MerchantState()) == 3
    assert key_partition("c:card-9", CardState(partition=2, offset=10)) == 2
    assert key_partition("c:card-9", CardState(partition=2, offset=10).to_json()) == 2
    assert key_partition("c:card-new", CardState()) is None  # never applied: unknown
    assert key_partition("c:old", [None, [], [], None, 0, [], []]) is None  # pre-v1.1 form
    assert key_partition("other", object()) is None


def test_only_entries_of_unassigned_partitions_are_dropped() -> None:
    state = {
        "m:a@0": MerchantState(),
        "m:a@1": MerchantState(),
        "c:x": CardState(partition=0, offset=1),
        "c:y": CardState(partition=1, offset=1).to_json(),
        "c:z": CardState(),
    }
    assert sorted(foreign_keys(state, {0})) == ["c:y", "m:a@1"]
    assert drop_foreign(state, [0]) == 2
    assert sorted(state) == ["c:x", "c:z", "m:a@0"]
    assert drop_foreign(state, [0]) == 0
