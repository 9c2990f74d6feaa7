"""Every learner of the registry: the same contract, its own behaviour, and its measured cost."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from streamlearn.learners.anomaly import AnomalyScorer
from streamlearn.learners.registry import build_learners, parse_keys
from streamlearn.learners.tree import SampledTree

NAMES = tuple(f"f{i}" for i in range(8))


def synthetic(n: int, seed: int, fraud_rate: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Frauds are shifted on the first two features; one column is heavy-tailed, one constant."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < fraud_rate
    X = rng.normal(size=(n, len(NAMES)))
    X[:, 0] += 3.0 * y
    X[:, 1] -= 2.0 * y
    X[:, 2] = rng.lognormal(3.0, 1.0, size=n)
    X[:, 3] = 1.0
    return X, y


def test_parse_keys_keeps_order_adds_lr_and_names_unknown_keys() -> None:
    assert parse_keys("hst, HAT,hst") == ["lr", "hst", "hat"]
    assert parse_keys("lr,hat,hst") == ["lr", "hat", "hst"]
    with pytest.raises(ValueError, match=r"'svm'.*known: lr, hat, arf, hst"):
        parse_keys("lr,svm")


@pytest.mark.parametrize("key", ["lr", "hat", "hst"])
def test_contract(key: str) -> None:
    [learner] = [m for m in build_learners(key, NAMES) if m.name.endswith(key)]
    X, y = synthetic(4000, seed=1)
    before = learner.score_batch(X[:10])
    assert before.shape == (10,) and np.all((before >= 0) & (before <= 1))
    for start in range(0, len(X), 100):
        learner.learn_unlabeled(X[start : start + 100])
        for row, label in zip(X[start : start + 100], y[start : start + 100], strict=True):
            learner.learn(row.tolist(), bool(label))
    after = learner.score_batch(X)
    assert after.shape == (len(X),) and np.all((after >= 0) & (after <= 1))
    assert np.isfinite(after).all()
    test_X, test_y = synthetic(2000, seed=2)
    assert roc_auc_score(test_y, learner.score_batch(test_X)) > 0.8


def test_tree_learns_every_fraud_and_a_weighted_sample_of_legit() -> None:
    X, y = synthetic(5000, seed=3)
    tree = SampledTree(NAMES, legit_fraction=0.1)
    for row, label in zip(X, y, strict=True):
        tree.learn(row.tolist(), bool(label))
    legit = int((~y).sum())
    assert tree.positives == int(y.sum())
    assert tree.seen == len(X)
    assert abs((tree.learned - tree.positives) - 0.1 * legit) < 4 * np.sqrt(0.1 * legit)


def test_anomaly_batch_score_equals_rivers_score_one() -> None:
    X, _ = synthetic(3000, seed=4)
    hst = AnomalyScorer(NAMES, window_size=500)
    assert np.all(hst.score_batch(X[:5]) == 0.5)
    hst.learn_unlabeled(X[:2200])
    probe, _ = synthetic(300, seed=5)
    probe[:5] *= 40.0  # outside the scaling limits: clipped
    batch = hst.score_batch(probe)
    one = np.array([hst.score_one(row.tolist()) for row in probe])
    assert np.max(np.abs(batch - one)) < 1e-12
    hst.learn_unlabeled(X[2200:])  # one more pivot: the flattened masses are refreshed
    assert np.max(np.abs(hst.score_batch(probe) - [hst.score_one(r) for r in probe])) < 1e-12


def test_anomaly_scorer_ranks_outliers_without_labels() -> None:
    rng = np.random.default_rng(6)
    normal = rng.normal(size=(4000, len(NAMES)))
    hst = AnomalyScorer(NAMES, window_size=500)
    hst.learn_unlabeled(normal)
    probe = rng.normal(size=(1000, len(NAMES)))
    outliers = np.zeros(1000, dtype=bool)
    outliers[:50] = True
    probe[:50, :3] += 6.0
    assert roc_auc_score(outliers, hst.score_batch(probe)) > 0.9


def test_costs() -> None:
    """Learn and score cost per learner (µs); loose bounds, the figures go to the docstrings."""
    X, y = synthetic(6000, seed=7, fraud_rate=0.01)
    report = {}
    for learner in build_learners("lr,hat,arf,hst", NAMES):
        learner.learn_unlabeled(X[:1000])
        t0 = time.perf_counter()
        for row, label in zip(X[:4000].tolist(), y[:4000], strict=True):
            learner.learn(row, bool(label))
        learn_us = (time.perf_counter() - t0) / 4000 * 1e6
        t0 = time.perf_counter()
        learner.learn_unlabeled(X[1000:5000])
        unlabeled_us = (time.perf_counter() - t0) / 4000 * 1e6
        t0 = time.perf_counter()
        for start in range(0, 4000, 500):
            learner.score_batch(X[start : start + 500])
        score_us = (time.perf_counter() - t0) / 4000 * 1e6
        report[learner.name] = (learn_us, unlabeled_us, score_us)
        print(
            f"{learner.name}: learn {learn_us:.1f} µs/outcome, learn_unlabeled "
            f"{unlabeled_us:.1f} µs/row, score {score_us:.1f} µs/row"
        )
    assert report["river_lr"][0] < 500 and report["river_lr"][2] < 20
    assert report["river_hat"][0] < 1000 and report["river_hat"][2] < 300
    assert report["river_arf"][0] < 2000 and report["river_arf"][2] < 1000
    assert report["river_hst"][1] < 500 and report["river_hst"][2] < 100
