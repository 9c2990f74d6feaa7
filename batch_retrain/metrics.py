"""Offline metrics of a fraud score on one split, weighted by each row's sample weight."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

# Review capacity: precision and recall among the top 1% of scores (by weight).
TOP_FRACTION = 0.01


def evaluate(y: np.ndarray, score: np.ndarray, w: np.ndarray | None = None) -> dict[str, float]:
    """auc, ap (average precision), logloss, p_at_1pct, r_at_1pct, base_rate, mean_score."""
    y = np.asarray(y)
    score = np.asarray(score, dtype=np.float64)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    both = 0 < y.sum() < len(y)
    precision, recall = precision_recall_at_top(y, score, w, TOP_FRACTION)
    clipped = np.clip(score, 1e-15, 1 - 1e-15)
    return {
        "auc": float(roc_auc_score(y, score, sample_weight=w)) if both else float("nan"),
        "ap": float(average_precision_score(y, score, sample_weight=w)) if both else float("nan"),
        "logloss": float(log_loss(y, clipped, sample_weight=w, labels=[0, 1])),
        "p_at_1pct": precision,
        "r_at_1pct": recall,
        "base_rate": float(np.average(y, weights=w)),
        "mean_score": float(np.average(score, weights=w)),
    }


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
