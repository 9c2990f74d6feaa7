"""A worker's learner set without Kafka: served source, drift events, the drift reference."""

from __future__ import annotations

import numpy as np
import pytest

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.learners.drift import bins_to_record, reference_bins
from streamlearn.learners.learner_set import REFERENCE_ROWS, LearnerSet, ScoredBatch


def batch(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.lognormal(1.0, 1.0, size=(n, len(FEATURE_NAMES)))
    m[:, 0] *= 1.0 + shift  # amount
    m[:, 1] = np.log1p(m[:, 0])  # log_amount
    return m


def scored(learners: LearnerSet, m: np.ndarray, lgbm, version: str, release=None, t: int = 0):
    """Score as the scoring path does (a snapshot), then let the learners observe it."""
    cols, served, source = learners.snapshot().score(m, lgbm)
    learners.observe(ScoredBatch(m, served, source, t, version, release))
    return cols, served, source


def test_serves_lr_then_champion_then_blend_and_names_drifted_features() -> None:
    learners = LearnerSet("lr,hst", FEATURE_NAMES)
    cols, _, source = scored(learners, batch(500, 1), None, "none")
    assert set(cols) == {"river_lr", "river_hst", "blend"} and source == "river_lr"
    lgbm = np.full(500, 0.01)
    _, served, source = scored(learners, batch(500, 2), lgbm, "v1")
    assert source == "lightgbm" and np.array_equal(served, lgbm)
    rng = np.random.default_rng(3)
    for i in range(400):
        y = bool(rng.random() < 0.1)
        s = 0.9 if y else 0.01
        champion = float(rng.random())  # the blend ranks better than the champion
        row = batch(1, 10 + i)[0]
        learners.learn(f"t{i}", row, {"lightgbm": champion, "blend": s}, y, 0, 0)
    assert scored(learners, batch(500, 4), lgbm, "v1")[2] == "blend"
    assert learners.served_source == "blend"
    assert learners.status()["served_why"].startswith("blend: blend AP 1.0000 vs champion")
    for i in range(REFERENCE_ROWS // 500 + 12):
        m = batch(500, 100 + i, shift=3.0 if i > REFERENCE_ROWS // 500 else 0.0)
        scored(learners, m, lgbm, "v1", t=i)
    events = learners.take_drift()
    assert {"amount", "log_amount"} <= {e.subject for e, _ in events if e.kind == "data"}
    assert learners.status()["drift_events"] and not learners.take_drift()


def test_the_snapshot_is_frozen_while_learning_goes_on() -> None:
    learners = LearnerSet("lr", FEATURE_NAMES)
    m = batch(50, 7)
    before = learners.snapshot()
    first = before.score(m, None)[0]["river_lr"]
    for i in range(200):
        learners.learn(f"t{i}", batch(1, 500 + i)[0], {}, i % 7 == 0, 0, 0)
    assert np.array_equal(before.score(m, None)[0]["river_lr"], first)  # it did not move
    assert not np.array_equal(learners.snapshot().score(m, None)[0]["river_lr"], first)
    # ...and it scores as River itself does.
    lr = learners.learners[0]
    expected = [lr.score_one(row.tolist()) for row in m[:5]]
    np.testing.assert_allclose(learners.snapshot().score(m[:5], None)[0]["river_lr"], expected)


def test_data_drift_reference_follows_the_champion_release() -> None:
    learners = LearnerSet("lr", FEATURE_NAMES)
    lgbm = np.full(500, 0.01)
    old = {"version": "v-old"}  # a release of the previous schema: no reference_bins
    scored(learners, batch(500, 1), lgbm, "v-old", old)
    assert learners.status()["drift_reference"] == "first 5000 events (collecting)"
    for i in range(REFERENCE_ROWS // 500):
        scored(learners, batch(500, 2 + i), lgbm, "v-old", old)
    assert learners.status()["drift_reference"] == "first 5000 events"
    first_events = learners.data_drift

    # A champion trained on amounts 3x today's: its bins are the reference from the swap on.
    shifted = batch(20_000, 50, shift=2.0)
    new = {
        "version": "v-new",
        "reference_bins": bins_to_record(reference_bins(shifted, FEATURE_NAMES)),
    }
    for i in range(REFERENCE_ROWS // 500 + 2):
        scored(learners, batch(500, 100 + i), lgbm, "v-new", new, t=i)
    assert learners.status()["drift_reference"] == "model v-new"
    assert learners.data_drift is not first_events
    events = learners.take_drift()
    assert {"amount", "log_amount"} <= {
        e.subject for e, v in events if e.kind == "data" and v == "v-new"
    }
    assert learners.status()["drift_psi"]["amount"] > 0.2

    # Traffic like its training data does not drift against the next champion's bins.
    same = {
        "version": "v-same",
        "reference_bins": bins_to_record(reference_bins(shifted, FEATURE_NAMES)),
    }
    for i in range(REFERENCE_ROWS // 500 + 2):
        scored(learners, batch(500, 200 + i, shift=2.0), lgbm, "v-same", same, t=i)
    assert learners.status()["drift_reference"] == "model v-same"
    assert not [e for e, _ in learners.take_drift() if e.kind == "data"]

    # A rollback to the release without bins: back to the first events, kept from before.
    scored(learners, batch(500, 300), lgbm, "v-old", old)
    assert learners.status()["drift_reference"] == "first 5000 events"
    assert learners.data_drift is not None and first_events is not None
    assert learners.data_drift.reference[0] is first_events.reference[0]


def learn_pairs(learners: LearnerSet, n: int, blend_good: bool, seed: int = 5) -> None:
    """n labels: the champion ranks well, the blend perfectly (good) or at random."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        y = bool(rng.random() < 0.1)
        champion = float(np.clip((0.6 if y else 0.2) + rng.normal(0, 0.2), 0.01, 0.99))
        blend = (0.8 if y else 0.02) if blend_good else float(rng.random())
        row = batch(1, 1000 + i)[0]
        learners.learn(f"{seed}-{i}", row, {"lightgbm": champion, "blend": blend}, y, 0, 0)


def test_a_blend_that_trails_the_champion_on_recent_labels_is_not_served() -> None:
    learners = LearnerSet("lr", FEATURE_NAMES)
    lgbm = np.full(50, 0.02)
    learn_pairs(learners, 600, blend_good=False)
    assert learners.blend.ready
    _, served, source = scored(learners, batch(50, 4), lgbm, "v1")
    assert source == "lightgbm" and np.array_equal(served, lgbm)
    why = learners.status()["served_why"]
    assert why.startswith("champion: blend AP") and "once it leads by 0.02" in why
    guard = learners.status()["blend"]["guard"]
    assert guard["champion_ap"] > guard["blend_ap"] + 0.3
    # Once the blend clearly leads on the window of recent labels, it is served.
    learn_pairs(learners, 4000, blend_good=True, seed=6)
    assert scored(learners, batch(50, 5), lgbm, "v1")[2] == "blend"
    # A new champion is served until the blend leads it afresh: the comparisons held were with
    # the one before.
    scored(learners, batch(50, 6), lgbm, "v2")
    assert scored(learners, batch(50, 7), lgbm, "v2")[2] == "lightgbm"
    assert "(champion v2 replaced v1)" in learners.status()["served_why"]
    learn_pairs(learners, 300, blend_good=True, seed=7)
    assert scored(learners, batch(50, 8), lgbm, "v2")[2] == "blend"


def test_a_legit_label_weighs_as_the_legit_payments_it_stands_for() -> None:
    learners = LearnerSet("lr", FEATURE_NAMES)
    assert learners.legit_weight() == 1.0  # nothing measured yet
    # The labels' log-odds bias against the champion: its fraud weighting (x10) and a tenth
    # of legit payments labelled (x10).
    learners.blend.offset = float(np.log(100.0))
    assert learners.legit_weight() == pytest.approx(10.0)


def test_without_a_champion_the_ready_blend_is_served_unguarded() -> None:
    learners = LearnerSet("lr", FEATURE_NAMES)
    learn_pairs(learners, 600, blend_good=False)
    assert scored(learners, batch(50, 4), None, "none")[2] == "blend"
    assert learners.status()["served_why"] == "no champion yet: the blend of the learners"
