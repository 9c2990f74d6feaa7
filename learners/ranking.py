"""Ranking metrics of a fraud score shared by the batch gate and the online metrics (pure numpy)."""

from __future__ import annotations

import numpy as np

# Alerts a review team works through per day: precision among each day's top-k scores.
ALERTS_PER_DAY = 50
DAY_MS = 86_400_000


def precision_at_k_per_day(
    y: np.ndarray, score: np.ndarray, w: np.ndarray, days: np.ndarray, k: int
) -> float:
    """Fraud share among the k highest scores of each day, pooled over the days.

    A row's weight counts as that many transactions (sampled legit rows stand for several),
    so each day's alerts are its top scores up to a total weight of k (at least one row).
    """
    if len(y) == 0 or k < 1:
        return float("nan")
    y = np.asarray(y, dtype=np.float64)
    hits = alerts = 0.0
    for day in np.unique(days):
        at = days == day
        order = np.argsort(-score[at], kind="stable")
        ws, ys = w[at][order], y[at][order]
        n = max(1, int(np.searchsorted(np.cumsum(ws), k, side="right")))
        hits += float((ws[:n] * ys[:n]).sum())
        alerts += float(ws[:n].sum())
    return hits / alerts if alerts else float("nan")
