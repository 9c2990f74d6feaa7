"""Online metrics of each scorer, computed when a label arrives from the score served then.

Per scorer: ROC AUC and average precision over the last `window` labels and since the start,
log loss, and the precision among the top `alerts_per_day` scores of each event day (the
review team's daily alerts, as the batch gate measures it), pooled over every day and over
the last `rolling_days` days. Labels arrive late and out of order, so each day keeps the k
highest labeled scores seen so far: a late label can still enter its day's alerts.

An update is O(1) (a histogram bin, a ring of recent labels, a heap push); the figures are
computed by scikit-learn when a snapshot is asked for. River's ROCAUC with 200 thresholds
cost ~100 us per label and scorer, more than learning itself.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from river import metrics
from sklearn.metrics import average_precision_score, roc_auc_score

from streamlearn.learners.ranking import ALERTS_PER_DAY, DAY_MS, precision_at_k_per_day

EPS = 1e-7
# Cumulative average precision from a histogram of logit(score): 2,400 bins of 0.01 over
# [-12, 12]; scores in one bin count as tied (sklearn's treatment of equal scores).
AP_BINS = 2400
AP_LOGIT_RANGE = 12.0
# Days whose alerts are kept one by one; older ones are folded into fixed totals.
MAX_DAYS = 400
NAN = float("nan")


def _logit_bin(score: float) -> int:
    p = min(max(score, EPS), 1 - EPS)
    z = math.log(p / (1 - p))
    b = int((z + AP_LOGIT_RANGE) / (2 * AP_LOGIT_RANGE) * AP_BINS)
    return min(max(b, 0), AP_BINS - 1)


def _binned(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """(labels, bin ranks, counts) of the used bins, or None without both classes."""
    used = (positives + negatives) > 0
    if positives.sum() == 0 or negatives.sum() == 0:
        return None
    ranks = np.nonzero(used)[0].astype(np.float64)
    n = int(used.sum())
    y = np.concatenate([np.ones(n), np.zeros(n)])
    w = np.concatenate([positives[used], negatives[used]]).astype(np.float64)
    keep = w > 0
    return y[keep], np.tile(ranks, 2)[keep], w[keep]


def _binned_score(score: Callable[..., Any], positives: np.ndarray, negatives: np.ndarray) -> float:
    binned = _binned(positives, negatives)
    if binned is None:
        return NAN
    y, ranks, w = binned
    return float(score(y, ranks, sample_weight=w))


def binned_average_precision(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Average precision of per-bin label counts (bins ordered by score), ties within a bin."""
    return _binned_score(average_precision_score, positives, negatives)


def binned_roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """ROC AUC of per-bin label counts (scores in one bin count as tied)."""
    return _binned_score(roc_auc_score, positives, negatives)


@dataclass
class DailyAlerts:
    """The `k` highest labeled scores of each event day, for precision among daily alerts."""

    k: int = ALERTS_PER_DAY
    days: dict[int, list[tuple[float, int, bool]]] = field(default_factory=dict)
    folded_hits: float = 0.0
    folded_alerts: float = 0.0
    _seq: int = 0

    def add(self, day: int, score: float, is_fraud: bool) -> None:
        heap = self.days.get(day)
        if heap is None:
            if len(self.days) >= MAX_DAYS:
                self._fold(min(self.days))
            heap = self.days[day] = []
        # (score, -seq): among equal scores the earlier label ranks first, as a stable sort.
        self._seq += 1
        item = (score, -self._seq, is_fraud)
        if len(heap) < self.k:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)

    def _fold(self, day: int) -> None:
        heap = self.days.pop(day)
        self.folded_hits += sum(f for _, _, f in heap)
        self.folded_alerts += len(heap)

    def precision(self, last_days: int | None = None) -> float:
        """Pooled precision over every day kept (and folded), or over the last `last_days`."""
        days = sorted(self.days)
        if last_days is not None:
            days = days[-last_days:]
        items = [(d, s, f) for d in days for s, _, f in self.days[d]]
        folded = last_days is None and self.folded_alerts > 0
        if not items:
            return self.folded_hits / self.folded_alerts if folded else NAN
        day_arr = np.array([d for d, _, _ in items])
        score = np.array([s for _, s, _ in items])
        y = np.array([f for _, _, f in items], dtype=np.float64)
        p = precision_at_k_per_day(y, score, np.ones(len(items)), day_arr, self.k)
        if not folded:
            return p
        alerts = float(len(items))  # each kept day holds at most k items: all are alerts
        return (p * alerts + self.folded_hits) / (alerts + self.folded_alerts)


@dataclass
class ScorerMetrics:
    """Rolling and cumulative ROC AUC and average precision, log loss, daily-alert precision."""

    window: int = 5000
    alerts_per_day: int = ALERTS_PER_DAY
    rolling_days: int = 7
    logloss: metrics.LogLoss = field(init=False)
    labels: int = 0
    positives: int = 0

    def __post_init__(self) -> None:
        self.logloss = metrics.LogLoss()
        self._new_ranking_state()

    def _new_ranking_state(self) -> None:
        self.recent: deque[tuple[float, bool]] = deque(maxlen=self.window)
        self.ap_pos = np.zeros(AP_BINS, dtype=np.int64)
        self.ap_neg = np.zeros(AP_BINS, dtype=np.int64)
        self.alerts = DailyAlerts(self.alerts_per_day)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A checkpoint written before AP and daily alerts existed: those start from now.
        # River's ROCAUC objects of older checkpoints are dropped (AUC comes from the bins).
        state = {k: v for k, v in state.items() if k not in ("rolling", "cumulative")}
        self.__dict__.update(state)
        self.__dict__.setdefault("alerts_per_day", ALERTS_PER_DAY)
        self.__dict__.setdefault("rolling_days", 7)
        if "recent" not in state:
            self._new_ranking_state()

    def update(self, is_fraud: bool, score: float, event_ms: int | None = None) -> None:
        """One label and the score served for it; event_ms (the transaction's) sets its day."""
        is_fraud = bool(is_fraud)
        score = min(max(float(score), EPS), 1 - EPS)
        self.logloss.update(is_fraud, score)
        self.recent.append((score, is_fraud))
        (self.ap_pos if is_fraud else self.ap_neg)[_logit_bin(score)] += 1
        if event_ms is not None:
            self.alerts.add(int(event_ms) // DAY_MS, score, is_fraud)
        self.labels += 1
        self.positives += int(is_fraud)

    def _recent(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(labels, scores) of the last `window` labels, or None without both classes."""
        y = np.fromiter((f for _, f in self.recent), dtype=bool, count=len(self.recent))
        if not 0 < y.sum() < len(y):
            return None
        s = np.fromiter((s for s, _ in self.recent), dtype=np.float64, count=len(self.recent))
        return y, s

    def rolling_ap(self) -> float:
        recent = self._recent()
        return NAN if recent is None else float(average_precision_score(*recent))

    def rolling_auc(self) -> float:
        recent = self._recent()
        return NAN if recent is None else float(roc_auc_score(*recent))

    def snapshot(self) -> dict[str, float]:
        both = 0 < self.positives < self.labels
        return {
            "labels": float(self.labels),
            "positives": float(self.positives),
            "auc_rolling": self.rolling_auc() if both else NAN,
            "auc": binned_roc_auc(self.ap_pos, self.ap_neg) if both else NAN,
            "logloss": float(self.logloss.get()) if self.labels else NAN,
            "ap_rolling": self.rolling_ap(),
            "ap": binned_average_precision(self.ap_pos, self.ap_neg),
            "p_at_k_day": self.alerts.precision(),
            "p_at_k_day_rolling": self.alerts.precision(self.rolling_days),
            "alerts_per_day": float(self.alerts_per_day),
        }


@dataclass
class Scorecard:
    """ScorerMetrics per scorer name (served score included as 'served')."""

    window: int = 5000
    by_scorer: dict[str, ScorerMetrics] = field(default_factory=dict)
    alerts_per_day: int = ALERTS_PER_DAY

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_cached"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("alerts_per_day", ALERTS_PER_DAY)

    def update(
        self, is_fraud: bool, scores: Mapping[str, float | None], event_ms: int | None = None
    ) -> None:
        for name, score in scores.items():
            if score is None:
                continue
            m = self.by_scorer.get(name)
            if m is None:
                m = self.by_scorer[name] = ScorerMetrics(self.window, self.alerts_per_day)
            m.update(is_fraud, score, event_ms)

    def snapshot(self, max_age_s: float = 0.0) -> dict[str, dict[str, float]]:
        """Every scorer's figures; up to `max_age_s` old (a status poll need not recompute)."""
        cached = self.__dict__.get("_cached")
        now = time.monotonic()
        if cached is not None and now - cached[0] <= max_age_s:
            return cached[1]
        snap = {name: m.snapshot() for name, m in sorted(self.by_scorer.items())}
        self.__dict__["_cached"] = (now, snap)
        return snap
