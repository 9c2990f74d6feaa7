"""The online stacker: serves nothing before enough labels, leans on the better component."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from streamlearn.learners.blend import Blend, BlendGuard

COMPONENTS = ("lightgbm", "river_lr", "river_hst")


def stream(n: int, seed: int, good: str, fraud_rate: float = 0.02) -> tuple[dict, np.ndarray]:
    """Component scores: `good` separates frauds well, the others weakly or not at all."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < fraud_rate
    strength = {"lightgbm": 0.6, "river_lr": 0.6, "river_hst": 0.0, good: 2.5}
    cols = {}
    for name in COMPONENTS:
        z = -3.0 + strength[name] * 1.5 * y + rng.normal(size=n)
        cols[name] = 1.0 / (1.0 + np.exp(-z))
    return cols, y


def prequential(blend: Blend, cols: dict, y: np.ndarray) -> np.ndarray:
    """Score each event with the weights of its time, then learn its label (as the worker)."""
    out = np.empty(len(y))
    for i in range(len(y)):
        row = {k: v[i] for k, v in cols.items()}
        out[i] = blend.score_batch({k: np.array([v]) for k, v in row.items()}, 1)[0]
        blend.learn(row, bool(y[i]))
    return out


def test_starts_as_the_champion_and_is_not_ready_before_enough_labels() -> None:
    blend = Blend(COMPONENTS, lead="lightgbm", min_labels=200, min_positives=5)
    cols, y = stream(100, seed=1, good="lightgbm")
    assert np.allclose(blend.score_batch(cols, 100), np.clip(cols["lightgbm"], 1e-4, 1 - 1e-4))
    prequential(blend, cols, y)
    assert not blend.ready
    cols, y = stream(400, seed=2, good="lightgbm")
    prequential(blend, cols, y)
    assert blend.ready


def test_missing_component_does_not_move_its_weight() -> None:
    blend = Blend(COMPONENTS, lead="lightgbm")
    cols, y = stream(2000, seed=3, good="river_lr")
    del cols["lightgbm"]
    prequential(blend, cols, y)
    assert blend.weights_by_component()["lightgbm"] == 1.0
    assert blend.score_batch(cols, 2000).shape == (2000,)


def test_within_001_of_the_best_component_and_follows_a_concept_change() -> None:
    blend = Blend(COMPONENTS, lead="lightgbm")
    before, y_before = stream(30_000, seed=4, good="lightgbm")
    served = prequential(blend, before, y_before)
    window = slice(10_000, None)
    best = max(roc_auc_score(y_before[window], before[c][window]) for c in COMPONENTS)
    assert roc_auc_score(y_before[window], served[window]) >= best - 0.01
    w = blend.weights_by_component()
    assert w["lightgbm"] > w["river_lr"]

    # Concept change: the champion goes stale, the online learner becomes the good one.
    after, y_after = stream(30_000, seed=5, good="river_lr")
    after["lightgbm"] = before["river_hst"]  # uninformative now
    served = prequential(blend, after, y_after)
    w = blend.weights_by_component()
    assert w["river_lr"] > w["lightgbm"]
    best = max(roc_auc_score(y_after[window], after[c][window]) for c in COMPONENTS)
    blend_auc = roc_auc_score(y_after[window], served[window])
    assert blend_auc >= best - 0.01
    assert blend_auc > roc_auc_score(y_after[window], after["lightgbm"][window]) + 0.2


def test_a_first_champion_is_served_as_is_until_a_refit_has_seen_it() -> None:
    blend = Blend(COMPONENTS, lead="lightgbm", refit_every=100)
    cols, y = stream(2000, seed=6, good="river_lr")
    del cols["lightgbm"]  # the learners are blended before any champion exists
    prequential(blend, cols, y)
    assert blend.weights_by_component()["river_lr"] > 0.5
    with_champion, y2 = stream(300, seed=7, good="lightgbm")
    served = blend.score_batch(with_champion, 300)
    assert np.allclose(served, np.clip(with_champion["lightgbm"], 1e-4, 1 - 1e-4))
    prequential(blend, with_champion, y2)  # labels scored with it: refit, then blended again
    served = blend.score_batch(with_champion, 300)
    assert not np.allclose(served, np.clip(with_champion["lightgbm"], 1e-4, 1 - 1e-4))
    assert roc_auc_score(y2, served) > 0.5


def test_an_older_sgd_blend_from_a_checkpoint_keeps_its_weights_and_learns_on() -> None:
    blend = Blend(COMPONENTS, lead="lightgbm")
    state = {
        k: v
        for k, v in vars(blend).items()
        if k not in ("_x", "_y", "_present", "_next", "_held", "window", "prior", "_fitted")
    }
    state["weights"] = np.array([0.2, 0.9, 0.0])
    old = Blend.__new__(Blend)
    old.__setstate__(state)
    assert old.weights_by_component()["river_lr"] == 0.9
    cols, y = stream(500, seed=8, good="river_lr")
    prequential(old, cols, y)
    assert old.labels == 500 and old.score_batch(cols, 500).shape == (500,)


def test_guard_needs_enough_frauds_before_it_lets_the_blend_serve() -> None:
    guard = BlendGuard(window=100, min_positives=5)
    for i in range(50):
        guard.update(i % 25 == 0, 0.5, 0.5)  # two frauds
    assert not guard.decide() and "2 frauds among the last 50 labels" in guard.reason


def test_guard_serves_the_blend_within_its_tolerance_only() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.1
    champion = np.where(y, 0.9, 0.1) + rng.normal(0, 0.3, 400)
    blend = champion + rng.normal(0, 0.3, 400)  # a noisier ranking: lower AP
    strict = BlendGuard(window=400)
    lenient = BlendGuard(window=400, tolerance=1.0, margin=-1.0)
    for g in (strict, lenient):
        for a, b, c in zip(y, blend, champion, strict=True):
            g.update(bool(a), float(b), float(c))
    assert not strict.decide() and strict.reason.startswith("champion: blend AP")
    assert strict.figures["blend_ap"] < strict.figures["champion_ap"]
    assert lenient.decide() and lenient.reason.startswith("blend: blend AP")


def test_guard_switches_with_hysteresis_lead_by_margin_then_trail_by_tolerance() -> None:
    guard = BlendGuard(window=100, min_positives=1, margin=0.1, tolerance=0.05)
    # One fraud in ten; the champion ranks one legit of ten above the frauds (AP 0.5).
    champion = [0.6 if i % 10 == 0 else 0.7 if i % 10 == 1 else 0.5 for i in range(100)]
    blends = {
        "better": [0.9 if i % 10 == 0 else 0.5 for i in range(100)],  # AP 1.0
        "equal": champion,  # AP 0.5
        "worse": [0.6 if i % 10 == 0 else 0.7 if i % 10 in (1, 2) else 0.5 for i in range(100)],
    }

    def serves_blend_after(kind: str) -> bool:
        for i in range(100):
            guard.update(i % 10 == 0, blends[kind][i], champion[i])
        return guard.decide()

    assert not serves_blend_after("equal")  # no lead: the champion stays
    assert serves_blend_after("better")  # a lead of 0.5 >= 0.1
    assert serves_blend_after("equal")  # trails by 0 <= 0.05: the blend stays
    assert not serves_blend_after("worse")  # AP 1/3: trails by 0.17 > 0.05
    assert not serves_blend_after("equal")


def test_guard_compares_only_the_last_window_of_labels() -> None:
    guard = BlendGuard(window=200, min_positives=5, margin=0.0)
    for i in range(1000):
        y = i % 10 == 0
        good = 0.9 if y else 0.1
        bad = 0.1 if y else 0.9
        guard.update(y, bad if i < 800 else good, good)  # the blend recovered lately
    assert guard.decide() and guard.figures["labels"] == 200.0


def test_guard_weighs_legit_labels_as_traffic_and_wants_a_lead_beyond_noise() -> None:
    rng = np.random.default_rng(6)
    n = 2000
    y = rng.random(n) < 0.08  # every fraud labelled, a tenth of legit payments
    champion = np.where(y, 0.6, 0.3) + rng.normal(0, 0.2, n)
    # Another ranking, a little ahead on these labels: a lead well within noise.
    blend = champion + rng.normal(0, 0.1, n) + np.where(y, 0.01, 0.0)
    guard = BlendGuard(window=n, margin=0.0)
    for a, b, c in zip(y, blend, champion, strict=True):
        guard.update(bool(a), float(b), float(c))
    assert not guard.decide(legit_weight=10.0)
    f = guard.figures
    assert 0 < f["blend_ap"] - f["champion_ap"] < f["lead_se"] and f["legit_weight"] == 10.0
    assert "+ 2 se" in guard.reason and "legit weighing 10.0" in guard.reason
    # Traffic weights change the AP compared: ten legit payments behind each legit label.
    unweighted = BlendGuard(window=n, margin=0.0, noise_z=0.0)
    for a, b, c in zip(y, blend, champion, strict=True):
        unweighted.update(bool(a), float(b), float(c))
    unweighted.decide(legit_weight=1.0)
    assert unweighted.figures["champion_ap"] > f["champion_ap"] + 0.1
    assert "se (0.0000)" in unweighted.reason


def test_guard_serves_the_champion_afresh_after_a_swap() -> None:
    guard = BlendGuard(window=100, min_positives=5, margin=0.0)
    for i in range(100):
        guard.update(i % 10 == 0, 0.9 if i % 10 == 0 else 0.1, 0.5)
    assert guard.decide()
    guard.reset("champion v2 replaced v1")
    assert not guard.decide() and guard.reason.startswith("champion: 0 frauds among the last 0")
    for i in range(100):
        guard.update(i % 10 == 0, 0.9 if i % 10 == 0 else 0.1, 0.5)
    assert guard.decide()
