"""S2: learned ids of any content survive a checkpoint; the worker restarts from it.

Ids used to be checkpointed joined by newlines and unpacked with zip(strict=True): one id with a
newline made every restart fail. Validation now refuses such ids (tests/unit/test_validate.py);
the encoding holds any id anyway (older checkpoints, ids learned before the rule).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.learners.metrics import Scorecard
from streamlearn.streams.online import OnlineLearning, save_checkpoint_sync, start_checkpoints
from streamlearn.streams.pending import BoundedMap
from streamlearn.streams.stats import WorkerStats


def ctx_of(online: OnlineLearning) -> SimpleNamespace:
    return SimpleNamespace(
        online=online,
        scorecard=Scorecard(),
        early=BoundedMap(10),
        learned=BoundedMap(1000),
        stats=WorkerStats(),
        unlearned=[],
        learner=None,
    )


def _round_trip(tmp_path: Path, ids: list[str]) -> SimpleNamespace:
    state_dir = tmp_path / uuid4().hex  # hypothesis reuses tmp_path: a fresh deployment each
    online = OnlineLearning("lr", FEATURE_NAMES)
    ctx = ctx_of(online)
    assert not start_checkpoints(ctx, state_dir, "w1", None)
    online.mark_learned(0, 7)
    for i, txn_id in enumerate(ids):
        ctx.learned.put(txn_id, i % 2 == 0)
    assert save_checkpoint_sync(ctx) > 0
    again = ctx_of(OnlineLearning("lr", FEATURE_NAMES))
    assert start_checkpoints(again, state_dir, "w1", None)
    return again


def test_an_id_with_a_newline_survives_a_restart(tmp_path: Path) -> None:
    ids = ["t-1", "t\n2", "", "t\r\n3", "\n", "t-4"]
    again = _round_trip(tmp_path, ids)
    assert again.learned.newest(10) == [(k, i % 2 == 0) for i, k in enumerate(ids)]


@hyp_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(max_size=12), max_size=20, unique=True))
def test_any_learned_ids_survive_a_checkpoint(tmp_path: Path, ids: list[str]) -> None:
    again = _round_trip(tmp_path, ids)
    assert sorted(k for k, _ in again.learned.newest(1000)) == sorted(ids)
