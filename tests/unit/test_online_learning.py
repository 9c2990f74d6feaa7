"""The worker's online learning without Kafka: served source, drift rows, checkpoint restore."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.learners import checkpoint
from streamlearn.learners.drift import bins_to_record, reference_bins
from streamlearn.learners.metrics import Scorecard
from streamlearn.streams.online import (
    REFERENCE_ROWS,
    OnlineLearning,
    metric_rows,
    save_checkpoint_sync,
    start_checkpoints,
)
from streamlearn.streams.pending import BoundedMap, Parked
from streamlearn.streams.stats import WorkerStats


def batch(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.lognormal(1.0, 1.0, size=(n, len(FEATURE_NAMES)))
    m[:, 0] *= 1.0 + shift  # amount
    m[:, 1] = np.log1p(m[:, 0])  # log_amount
    return m


def ctx_of(online: OnlineLearning) -> SimpleNamespace:
    return SimpleNamespace(
        online=online,
        scorecard=Scorecard(),
        early=BoundedMap(10),
        learned=BoundedMap(10),
        stats=WorkerStats(),
        unlearned=[],
        learner=None,
    )


def test_serves_lr_then_champion_then_blend_and_names_drifted_features() -> None:
    online = OnlineLearning("lr,hst", FEATURE_NAMES)
    cols, served = online.score(batch(500, 1), None, 0, "none")
    assert set(cols) == {"river_lr", "river_hst", "blend"} and online.served_source == "river_lr"
    lgbm = np.full(500, 0.01)
    cols, served = online.score(batch(500, 2), lgbm, 0, "v1")
    assert online.served_source == "lightgbm" and np.array_equal(served, lgbm)
    rng = np.random.default_rng(3)
    for i in range(400):
        y = bool(rng.random() < 0.05)
        online.learn(batch(1, 10 + i)[0].tolist(), {"lightgbm": 0.9 if y else 0.01}, y, 0)
    online.score(batch(500, 4), lgbm, 0, "v1")
    assert online.served_source == "blend"
    for i in range(REFERENCE_ROWS // 500 + 12):
        online.score(
            batch(500, 100 + i, shift=3.0 if i > REFERENCE_ROWS // 500 else 0.0), lgbm, i, "v1"
        )
    subjects = {e.subject for e, _ in online.unsaved_drift if e.kind == "data"}
    assert {"amount", "log_amount"} <= subjects
    assert len(online.drift_rows()[0]) == 7
    assert online.status()["drift_events"]


def test_checkpoint_restores_learners_and_covered_offsets(tmp_path: Path) -> None:
    online = OnlineLearning("lr,hat,hst", FEATURE_NAMES)
    ctx = ctx_of(online)
    assert not start_checkpoints(ctx, tmp_path, "w1", None)
    assert (tmp_path / "checkpoints" / "key").stat().st_mode & 0o777 == 0o600
    online.learn(batch(1, 1)[0].tolist(), {}, True, 0)
    ctx.scorecard.update(True, {"river_lr": 0.7})
    online.mark_learned(0, 41)
    ctx.learned.put("t1", True)
    ctx.stats.learned = 1
    ctx.stats.duplicate_outcomes = 2
    ctx.early.put("t2", Parked(False, 5, 6, 0, 40))
    assert save_checkpoint_sync(ctx) > 0
    assert online.saved_covered == {0: 41}

    again = OnlineLearning("lr,hat,hst", FEATURE_NAMES)
    ctx2 = ctx_of(again)
    assert start_checkpoints(ctx2, tmp_path, "w1", None)
    assert again.covers(0, 41) and not again.covers(0, 42) and not again.covers(1, 0)
    assert again.lr.learned == 1 and ctx2.learner is again.lr
    assert ctx2.scorecard.by_scorer["river_lr"].labels == 1
    # What was learned continues from the checkpoint: counters, ids (repeats stay repeats),
    # and the outcomes still waiting for their transaction.
    assert ctx2.stats.learned == 1 and ctx2.stats.duplicate_outcomes == 2
    assert ctx2.learned.get("t1") is True
    assert ctx2.early.get("t2") == Parked(False, 5, 6, 0, 40)
    assert again.saved_covered == {0: 41}
    assert again.status()["checkpoint"]["restored_counters"]["learned"] == 1
    rows = metric_rows(ctx2.scorecard, "w1", dt.datetime.now(dt.UTC))
    assert rows[0][1:5] == ["w1", "river_lr", 1, 1]

    # A different key (e.g. the signing key set since): refused, the learners start anew.
    third = OnlineLearning("lr,hat,hst", FEATURE_NAMES)
    assert not start_checkpoints(ctx_of(third), tmp_path, "w1", b"another key")
    assert third.lr.learned == 0


def test_a_checkpoint_from_before_parked_origins_still_restores(tmp_path: Path) -> None:
    online = OnlineLearning("lr", FEATURE_NAMES)
    ctx = ctx_of(online)
    start_checkpoints(ctx, tmp_path, "w1", None)
    online.mark_learned(0, 3)
    ctx.early.put("t9", True)  # what earlier versions parked: the bare label
    state = online.state(ctx.scorecard, ctx.early)  # and none of the newer keys
    checkpoint.save(online.checkpoint_path, state, online.covered, online.key)
    ctx2 = ctx_of(OnlineLearning("lr", FEATURE_NAMES))
    assert start_checkpoints(ctx2, tmp_path, "w1", None)
    parked = ctx2.early.get("t9")
    assert isinstance(parked, Parked) and parked.is_fraud is True and parked.partition == -1
    assert ctx2.stats.learned == 0 and ctx2.online.covers(0, 3)


def test_data_drift_reference_follows_the_champion_release() -> None:
    online = OnlineLearning("lr", FEATURE_NAMES)
    lgbm = np.full(500, 0.01)
    old = {"version": "v-old"}  # a release of the previous schema: no reference_bins
    online.score(batch(500, 1), lgbm, 0, "v-old", old)
    assert online.status()["drift_reference"] == "first 5000 events (collecting)"
    for i in range(REFERENCE_ROWS // 500):
        online.score(batch(500, 2 + i), lgbm, 0, "v-old", old)
    assert online.status()["drift_reference"] == "first 5000 events"
    first_events = online.data_drift

    # A champion trained on amounts 3x today's: its bins are the reference from the swap on.
    shifted = batch(20_000, 50, shift=2.0)
    new = {
        "version": "v-new",
        "reference_bins": bins_to_record(reference_bins(shifted, FEATURE_NAMES)),
    }
    for i in range(REFERENCE_ROWS // 500 + 2):
        online.score(batch(500, 100 + i), lgbm, i, "v-new", new)
    assert online.status()["drift_reference"] == "model v-new"
    assert online.data_drift is not first_events
    subjects = {e.subject for e, v in online.unsaved_drift if e.kind == "data" and v == "v-new"}
    assert {"amount", "log_amount"} <= subjects
    assert online.status()["drift_psi"]["amount"] > 0.2

    # Traffic like its training data does not drift against the next champion's bins.
    same = {
        "version": "v-same",
        "reference_bins": bins_to_record(reference_bins(shifted, FEATURE_NAMES)),
    }
    online.unsaved_drift.clear()
    for i in range(REFERENCE_ROWS // 500 + 2):
        online.score(batch(500, 200 + i, shift=2.0), lgbm, i, "v-same", same)
    assert online.status()["drift_reference"] == "model v-same"
    assert not [e for e, _ in online.unsaved_drift if e.kind == "data"]

    # A rollback to the release without bins: back to the first events, kept from before.
    online.score(batch(500, 300), lgbm, 0, "v-old", old)
    assert online.status()["drift_reference"] == "first 5000 events"
    assert online.data_drift.reference[0] is first_events.reference[0]
