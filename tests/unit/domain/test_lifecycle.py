"""The model lifecycle: each transition's registry changes, and the moves it refuses."""

from __future__ import annotations

import pytest

from streamlearn.domain import lifecycle
from streamlearn.domain.lifecycle import (
    LifecycleError,
    ModelStatus,
    StatusChange,
    check_move,
)

C, S, CH, RT, RJ = (
    ModelStatus.CANDIDATE,
    ModelStatus.SHADOW,
    ModelStatus.CHAMPION,
    ModelStatus.RETIRED,
    ModelStatus.REJECTED,
)


def test_statuses_are_the_registry_strings():
    assert [str(s) for s in ModelStatus] == [
        "candidate",
        "shadow",
        "champion",
        "retired",
        "rejected",
    ]
    assert ModelStatus("champion") is CH and CH == "champion"


def test_promote_retires_the_champion_it_replaces():
    moves = lifecycle.promote("v2", replacing="v1", reason="ap better")
    assert list(moves) == [
        StatusChange("v2", CH, "ap better"),
        StatusChange("v1", RT, "replaced by v2"),
    ]
    live = lifecycle.promote("v2", replacing="v1", reason="live: ap", live=True)
    assert live.displaced == (StatusChange("v1", RT, "replaced by shadow v2 (live)"),)
    assert lifecycle.promote("v1", replacing=None, reason="first").displaced == ()
    assert lifecycle.promote("v1", replacing="v1", reason="again").displaced == ()


def test_shadow_reject_retire_and_rollback():
    assert list(lifecycle.enter_shadow("v3", replacing="v2", reason="gate")) == [
        StatusChange("v3", S, "gate"),
        StatusChange("v2", RT, "shadow replaced by v3"),
    ]
    assert list(lifecycle.reject("v4", "ap worse")) == [StatusChange("v4", RJ, "ap worse")]
    assert list(lifecycle.retire("v4", "withdrawn")) == [StatusChange("v4", RT, "withdrawn")]
    assert list(lifecycle.rollback("v1", current="v2")) == [
        StatusChange("v1", CH, "rolled back from v2"),
        StatusChange("v2", RT, "rolled back to v1"),
    ]
    assert list(lifecycle.rollback("v1", current=None)) == [
        StatusChange("v1", CH, "rolled back from none")
    ]
    with pytest.raises(LifecycleError, match="already the champion"):
        lifecycle.rollback("v1", current="v1")


@pytest.mark.parametrize(
    ("before", "after"),
    [(C, CH), (C, S), (C, RJ), (S, CH), (S, RJ), (S, RT), (CH, RT), (RT, CH), (RJ, CH), (CH, CH)],
)
def test_allowed_moves(before, after):
    check_move("v1", before, after)


@pytest.mark.parametrize(
    ("before", "after"),
    [(CH, C), (CH, RJ), (CH, S), (RT, C), (RT, S), (RJ, S), (RJ, RT), (C, RT), (S, C)],
)
def test_refused_moves(before, after):
    with pytest.raises(LifecycleError, match=f"from {before} to {after}"):
        check_move("v1", before, after)
