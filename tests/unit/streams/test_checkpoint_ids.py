"""S2: learned ids of any content survive a checkpoint; the worker restarts from it.

Ids used to be checkpointed joined by newlines and unpacked with zip(strict=True): one id with a
newline made every restart fail. Validation now refuses such ids (tests/unit/test_validate.py);
the encoding holds any id anyway (older checkpoints, ids learned before the rule).
"""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.learners.learner_set import LearnerSet
from streamlearn.streams.learning import CheckpointRequest, LearningThread, restore
from streamlearn.streams.merchant_risk import MerchantRisk

KEY = b"k" * 32


def _round_trip(tmp_path: Path, ids: list[str]) -> LearnerSet:
    path = tmp_path / uuid4().hex / "w1.ckpt"  # hypothesis reuses tmp_path: fresh each time
    learners = LearnerSet("lr", FEATURE_NAMES)
    for i, txn_id in enumerate(ids):
        learners.learned.put(txn_id, i % 2 == 0)
    thread = LearningThread(learners, MerchantRisk(), checkpoint_path=path, key=KEY)
    thread._checkpoint(CheckpointRequest({0: 7}, [], {}, []))  # what the thread runs
    again = LearnerSet("lr", FEATURE_NAMES)
    assert restore(path, KEY, again) is not None
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
