"""The online learner: batch scoring equals River's own, it learns a signal; online metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from streamlearn.learners.metrics import Scorecard, ScorerMetrics
from streamlearn.learners.online import OnlineLogistic, sigmoid

NAMES = ("signal", "noise", "constant", "big")


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """About 10% positives, separable on the first feature, with a constant and a huge column."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.1
    X = np.column_stack(
        [
            rng.normal(size=n) + 3.0 * y,
            rng.normal(size=n),
            np.full(n, 5.0),
            rng.normal(1e5, 1e4, size=n),
        ]
    )
    return X, y


@pytest.fixture(scope="module")
def trained() -> OnlineLogistic:
    X, y = synthetic(3000, seed=1)
    learner = OnlineLogistic(NAMES, learning_rate=0.05)
    for row, label in zip(X, y, strict=True):
        learner.learn(row.tolist(), bool(label))
    return learner


def test_untrained_learner_scores_one_half() -> None:
    learner = OnlineLogistic(NAMES)
    X, _ = synthetic(5, seed=0)
    assert np.array_equal(learner.score_batch(X), np.full(5, 0.5))
    assert learner.score_one(X[0].tolist()) == pytest.approx(0.5)


def test_score_batch_equals_rivers_predict_proba_one(trained: OnlineLogistic) -> None:
    X, _ = synthetic(300, seed=2)
    X[:5] *= 50.0  # far from the training data: large logits
    batch = trained.score_batch(X)
    one = np.array([trained.score_one(row.tolist()) for row in X])
    assert batch.shape == (300,)
    assert np.max(np.abs(batch - one)) < 1e-9


def test_score_batch_equals_river_after_every_few_steps() -> None:
    X, y = synthetic(200, seed=3)
    learner = OnlineLogistic(NAMES, learning_rate=0.1, fraud_weight=5.0)
    probe, _ = synthetic(20, seed=4)
    for i, (row, label) in enumerate(zip(X, y, strict=True)):
        learner.learn(row.tolist(), bool(label))
        if i % 25 == 0:
            one = np.array([learner.score_one(r.tolist()) for r in probe])
            assert np.max(np.abs(learner.score_batch(probe) - one)) < 1e-9


def test_scoring_does_not_change_the_model(trained: OnlineLogistic) -> None:
    X, _ = synthetic(50, seed=5)
    before = trained.score_batch(X)
    for row in X:
        trained.score_one(row.tolist())
    assert np.array_equal(trained.score_batch(X), before)


def test_learns_a_separable_signal(trained: OnlineLogistic) -> None:
    X, y = synthetic(2000, seed=6)
    assert roc_auc_score(y, trained.score_batch(X)) > 0.9
    assert trained.learned == 3000 and 0 < trained.positives < 3000


def test_fraud_weight_raises_the_scores_of_positives() -> None:
    X, y = synthetic(1500, seed=7)
    light, heavy = OnlineLogistic(NAMES, fraud_weight=1.0), OnlineLogistic(NAMES, fraud_weight=20.0)
    for row, label in zip(X, y, strict=True):
        light.learn(row.tolist(), bool(label))
        heavy.learn(row.tolist(), bool(label))
    assert heavy.score_batch(X).mean() > light.score_batch(X).mean()


def test_wrong_vector_length_is_an_error() -> None:
    learner = OnlineLogistic(NAMES)
    with pytest.raises(ValueError):
        learner.learn([1.0, 2.0], True)


def test_sigmoid_is_clamped_and_symmetric() -> None:
    assert sigmoid(0.0) == 0.5
    assert sigmoid(1e6) == pytest.approx(1.0) and sigmoid(-1e6) > 0.0
    assert sigmoid(2.0) == pytest.approx(1 - sigmoid(-2.0))


def test_metrics_are_nan_until_both_classes_are_seen() -> None:
    m = ScorerMetrics(window=100)
    snap = m.snapshot()
    assert snap["labels"] == 0.0 and all(math.isnan(snap[k]) for k in ("auc", "logloss"))
    for _ in range(5):
        m.update(False, 0.1)
    snap = m.snapshot()
    assert snap["labels"] == 5.0 and snap["positives"] == 0.0
    assert math.isnan(snap["auc"]) and math.isnan(snap["auc_rolling"])
    assert snap["logloss"] == pytest.approx(-math.log(0.9))
    m.update(True, 0.9)
    snap = m.snapshot()
    assert snap["auc"] == pytest.approx(1.0, abs=0.01) and snap["auc_rolling"] == 1.0


def test_only_positives_is_nan_too() -> None:
    m = ScorerMetrics()
    m.update(True, 0.7)
    m.update(True, 0.2)
    assert math.isnan(m.snapshot()["auc"]) and m.snapshot()["positives"] == 2.0


def test_scorecard_auc_near_one_for_perfect_scores() -> None:
    rng = np.random.default_rng(8)
    card = Scorecard(window=500)
    for _ in range(1000):
        fraud = bool(rng.random() < 0.2)
        perfect = 0.6 + 0.4 * rng.random() if fraud else 0.4 * rng.random()
        card.update(fraud, {"served": perfect, "coin": float(rng.random()), "missing": None})
    snap = card.snapshot()
    assert list(snap) == ["coin", "served"]  # sorted; a None score is not counted
    assert snap["served"]["auc"] > 0.99 and snap["served"]["auc_rolling"] == pytest.approx(1.0)
    assert 0.4 < snap["coin"]["auc"] < 0.6
    assert snap["served"]["labels"] == 1000.0
    assert snap["served"]["logloss"] < snap["coin"]["logloss"]


def test_scores_outside_zero_one_are_clamped() -> None:
    m = ScorerMetrics()
    m.update(True, 1.5)
    m.update(False, -0.5)
    snap = m.snapshot()
    assert math.isfinite(snap["logloss"]) and snap["logloss"] < 1e-5
