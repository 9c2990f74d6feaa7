"""The served score: an online logistic stacker on the logits of the component scores.

Inputs are logit(score) of each component (LightGBM champion and each River learner), as they
were served at event time; a missing component counts as logit 0 and its weight is not updated.
Weights start on the champion (the blend starts as the champion) and follow outcomes with
RMSprop-scaled SGD at a constant step, so they keep adapting after a concept change instead of
freezing. Frauds are weighted (`fraud_weight`) against imbalance.
Until `min_labels` outcomes with `min_positives` frauds were learned, `ready` is False and the
worker serves the champion (or the best available scorer) instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

BLEND = "blend"
EPS = 1e-4  # scores are clipped into [EPS, 1 - EPS] before the logit: |logit| <= 9.2


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


class Blend:
    """Online stacker over named component scores (order fixed at construction)."""

    name = BLEND

    def __init__(
        self,
        components: Sequence[str],
        *,
        lead: str | None = None,
        learning_rate: float = 0.02,
        decay: float = 0.99,
        l2: float = 1e-4,
        fraud_weight: float = 10.0,
        min_labels: int = 200,
        min_positives: int = 5,
    ) -> None:
        self.components = tuple(components)
        self.weights = np.zeros(len(self.components))
        if lead is not None and lead in self.components:
            self.weights[self.components.index(lead)] = 1.0
        self.intercept = 0.0
        self.learning_rate = learning_rate
        self.decay = decay
        self.l2 = l2
        self.fraud_weight = fraud_weight
        self.min_labels = min_labels
        self.min_positives = min_positives
        self._sq = np.full(len(self.components) + 1, 1e-2)  # running mean of squared gradients
        self.labels = 0
        self.positives = 0

    @property
    def ready(self) -> bool:
        return self.labels >= self.min_labels and self.positives >= self.min_positives

    def inputs(self, columns: Mapping[str, np.ndarray | None], n: int) -> np.ndarray:
        """(n, components) logits from per-component score arrays (None: missing)."""
        out = np.zeros((n, len(self.components)))
        for j, name in enumerate(self.components):
            scores = columns.get(name)
            if scores is not None:
                out[:, j] = logit(np.asarray(scores, dtype=np.float64))
        return out

    def score_batch(self, columns: Mapping[str, np.ndarray | None], n: int) -> np.ndarray:
        """The blended fraud probability for n rows of component scores."""
        z = self.inputs(columns, n) @ self.weights + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))

    def learn(self, scores: Mapping[str, float | None], is_fraud: bool) -> None:
        """One step on one outcome, from the component scores served for it."""
        present = np.array([scores.get(c) is not None for c in self.components] + [True])
        x = self.inputs({k: None if v is None else np.array([v]) for k, v in scores.items()}, 1)[0]
        z = float(x @ self.weights + self.intercept)
        p = 1.0 / (1.0 + np.exp(-max(-35.0, min(35.0, z))))
        weight = self.fraud_weight if is_fraud else 1.0
        g = weight * (p - float(is_fraud))
        grad = np.append(g * x, g)
        # A missing component is left as it is: neither its weight nor its step size moves.
        self._sq = np.where(
            present, self.decay * self._sq + (1.0 - self.decay) * grad * grad, self._sq
        )
        step = np.where(present, self.learning_rate * grad / (np.sqrt(self._sq) + 1e-8), 0.0)
        self.weights -= step[:-1] + self.learning_rate * self.l2 * self.weights * present[:-1]
        self.intercept -= float(step[-1])
        self.labels += 1
        self.positives += int(bool(is_fraud))

    def weights_by_component(self) -> dict[str, float]:
        out = dict(zip(self.components, self.weights.tolist(), strict=True))
        out["intercept"] = self.intercept
        return out
