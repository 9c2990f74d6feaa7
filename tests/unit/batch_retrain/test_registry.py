"""The registry makes lifecycle transitions, on the real embedded store (chdb)."""

from __future__ import annotations

import datetime as dt

import pytest

from streamlearn.batch_retrain import registry
from streamlearn.domain import lifecycle
from streamlearn.domain.lifecycle import LifecycleError, ModelStatus
from streamlearn.foundation.store import Store

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path):
    s = Store(f"chdb://{tmp_path}/ch")
    s.migrate()
    yield s
    s.close()


def add(store: Store, version: str, status: ModelStatus, minutes: int) -> None:
    at = T0 + dt.timedelta(minutes=minutes)
    registry.register(
        store,
        registry.ModelEntry(version, "fraud", at, status, T0, at, 10, 5, ["amount"], "00"),
    )


def test_apply_writes_the_subject_with_its_record_then_the_displaced(store):
    add(store, "v1", ModelStatus.CHAMPION, 0)
    add(store, "v2", ModelStatus.CANDIDATE, 1)
    moves = lifecycle.promote("v2", replacing="v1", reason="ap better")
    registry.apply(store, moves, decision="ap better", compared_rows=42)
    v1, v2 = registry.get(store, "v1"), registry.get(store, "v2")
    assert (v2.status, v2.reason, v2.decision, v2.compared_rows) == (
        "champion",
        "ap better",
        "ap better",
        42,
    )
    assert (v1.status, v1.reason, v1.decision) == ("retired", "replaced by v2", "")
    assert registry.current_champion(store).version == "v2"
    assert isinstance(v1.status, ModelStatus)


def test_a_refused_move_writes_nothing(store):
    add(store, "v1", ModelStatus.CHAMPION, 0)
    add(store, "v2", ModelStatus.REJECTED, 1)
    with pytest.raises(LifecycleError, match="v1 cannot go from champion to rejected"):
        registry.apply(
            store,
            lifecycle.Transition(
                lifecycle.StatusChange("v2", ModelStatus.CHAMPION, "x"),
                (lifecycle.StatusChange("v1", ModelStatus.REJECTED, "x"),),
            ),
        )
    assert registry.get(store, "v2").status == "rejected"
    assert registry.get(store, "v1").status == "champion"


def test_times_come_back_as_aware_utc(store):
    add(store, "v1", ModelStatus.CANDIDATE, 3)
    entry = registry.get(store, "v1")
    assert entry.created_at == T0 + dt.timedelta(minutes=3)
    assert entry.created_at.tzinfo is not None
    assert registry.as_utc(entry.created_at.replace(tzinfo=None)) == entry.created_at
