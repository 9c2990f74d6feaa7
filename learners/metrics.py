"""Online metrics of each scorer, computed when a label arrives from the score served then."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from river import metrics


@dataclass
class ScorerMetrics:
    """Rolling ROC AUC over the last `window` labels, plus cumulative ROC AUC and log loss."""

    window: int = 5000
    rolling: metrics.RollingROCAUC = field(init=False)
    cumulative: metrics.ROCAUC = field(init=False)
    logloss: metrics.LogLoss = field(init=False)
    labels: int = 0
    positives: int = 0

    def __post_init__(self) -> None:
        self.rolling = metrics.RollingROCAUC(window_size=self.window)
        self.cumulative = metrics.ROCAUC(n_thresholds=200)
        self.logloss = metrics.LogLoss()

    def update(self, is_fraud: bool, score: float) -> None:
        score = min(max(score, 1e-7), 1 - 1e-7)
        self.rolling.update(is_fraud, score)
        self.cumulative.update(is_fraud, score)
        self.logloss.update(is_fraud, score)
        self.labels += 1
        self.positives += int(is_fraud)

    def snapshot(self) -> dict[str, float]:
        both = 0 < self.positives < self.labels
        return {
            "labels": float(self.labels),
            "positives": float(self.positives),
            "auc_rolling": float(self.rolling.get()) if both else float("nan"),
            "auc": float(self.cumulative.get()) if both else float("nan"),
            "logloss": float(self.logloss.get()) if self.labels else float("nan"),
        }


@dataclass
class Scorecard:
    """ScorerMetrics per scorer name (served score included as 'served')."""

    window: int = 5000
    by_scorer: dict[str, ScorerMetrics] = field(default_factory=dict)

    def update(self, is_fraud: bool, scores: Mapping[str, float]) -> None:
        for name, score in scores.items():
            if score is None:
                continue
            m = self.by_scorer.get(name)
            if m is None:
                m = self.by_scorer[name] = ScorerMetrics(self.window)
            m.update(is_fraud, score)

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {name: m.snapshot() for name, m in sorted(self.by_scorer.items())}
