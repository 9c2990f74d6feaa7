"""Offline metrics of a fraud score on one split, weighted by each row's sample weight."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

# Shared with the online metrics; re-exported here for the gate and older imports.
from streamlearn.learners.ranking import ALERTS_PER_DAY, DAY_MS, precision_at_k_per_day

# Review capacity: precision and recall among the top 1% of scores (by weight).
TOP_FRACTION = 0.01
# Equal-width score bins of the expected calibration error.
ECE_BINS = 10


def evaluate(
    y: np.ndarray,
    score: Any,
    w: np.ndarray | None = None,
    event_time: np.ndarray | None = None,
    *,
    alerts_per_day: int = ALERTS_PER_DAY,
) -> dict[str, float]:
    """auc, ap (average precision), logloss, ece, p_at_1pct, r_at_1pct, base_rate, mean_score;
    with event_time (epoch ms) also p_at_k_day, the precision among each day's top-k alerts."""
    y = np.asarray(y)
    score = np.asarray(score, dtype=np.float64)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    both = 0 < y.sum() < len(y)
    precision, recall = precision_recall_at_top(y, score, w, TOP_FRACTION)
    clipped = np.clip(score, 1e-15, 1 - 1e-15)
    out = {
        "auc": float(roc_auc_score(y, score, sample_weight=w)) if both else float("nan"),
        "ap": float(average_precision_score(y, score, sample_weight=w)) if both else float("nan"),
        "logloss": float(log_loss(y, clipped, sample_weight=w, labels=[0, 1])),
        "ece": expected_calibration_error(y, score, w),
        "p_at_1pct": precision,
        "r_at_1pct": recall,
        "base_rate": float(np.average(y, weights=w)),
        "mean_score": float(np.average(score, weights=w)),
    }
    if event_time is not None:
        days = np.asarray(event_time, dtype=np.int64) // DAY_MS
        out["p_at_k_day"] = precision_at_k_per_day(y, score, w, days, alerts_per_day)
    return out


def precision_recall_at_top(
    y: np.ndarray, score: np.ndarray, w: np.ndarray, fraction: float
) -> tuple[float, float]:
    """Weighted precision and recall among the highest scores holding `fraction` of the weight."""
    if len(y) == 0:
        return float("nan"), float("nan")
    order = np.argsort(-score, kind="stable")
    ws, ys = w[order], y[order]
    cum = np.cumsum(ws)
    k = int(np.searchsorted(cum, fraction * cum[-1])) + 1
    hits = float((ws[:k] * ys[:k]).sum())
    positives = float((ws * ys).sum())
    return hits / float(cum[k - 1]), (hits / positives if positives else float("nan"))


def expected_calibration_error(
    y: np.ndarray, score: np.ndarray, w: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Weighted mean |observed fraud rate - mean score| over equal-width score bins."""
    total = float(np.sum(w))
    if len(y) == 0 or total <= 0:
        return float("nan")
    y = np.asarray(y, dtype=np.float64)
    which = np.minimum((np.clip(score, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
    weight = np.bincount(which, weights=w, minlength=bins)
    observed = np.bincount(which, weights=w * y, minlength=bins)
    predicted = np.bincount(which, weights=w * score, minlength=bins)
    used = weight > 0
    gaps = np.abs(observed[used] - predicted[used])  # = weight * |rate - mean score|
    return float(gaps.sum() / total)


# The metrics whose paired bootstrap noise the gate weighs (cheap to recompute per replicate).
_RANKING = {
    "ap": average_precision_score,
    "auc": roc_auc_score,
}
BOOTSTRAP_REPS = 200


def paired_gain_se(
    y: np.ndarray,
    ours: np.ndarray,
    theirs: np.ndarray,
    w: np.ndarray | None = None,
    *,
    names: tuple[str, ...] = tuple(_RANKING),
    reps: int = BOOTSTRAP_REPS,
    seed: int = 0,
) -> dict[str, float]:
    """Standard error of (ours - theirs) per metric in `names` (ap, auc) on the same rows: a
    paired Poisson bootstrap (each row's weight times Poisson(1), both scores resampled alike).
    A holdout of a few days holds ~100-250 frauds; the AP difference of two models on it
    moves by ~0.02 from one resample to the next. NaN when a class is missing."""
    y = np.asarray(y)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    used = [n for n in names if n in _RANKING]
    if not 0 < y.sum() < len(y) or not used:
        return {n: float("nan") for n in used}
    rng = np.random.default_rng(seed)
    gains: dict[str, list[float]] = {n: [] for n in used}
    for _ in range(reps):
        wb = w * rng.poisson(1.0, len(y))
        if not 0 < wb[y > 0].sum() < wb.sum():
            continue
        for n in used:
            f = _RANKING[n]
            gains[n].append(float(f(y, ours, sample_weight=wb) - f(y, theirs, sample_weight=wb)))
    return {n: float(np.std(g)) if len(g) > 1 else float("nan") for n, g in gains.items()}
