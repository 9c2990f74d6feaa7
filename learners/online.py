"""A scaled online logistic regression (River) that learns from each labeled feature vector.

Scoring a micro-batch goes through numpy with the learner's current weights (the same
arithmetic as River's predict_proba_one, checked by the tests) because calling River once
per event would cost more than the rest of the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from river import compose, linear_model, optim, preprocessing


class OnlineLogistic:
    """StandardScaler | LogisticRegression, with fraud up-weighted to counter class imbalance."""

    name = "river_lr"

    def __init__(
        self,
        feature_names: Sequence[str],
        *,
        learning_rate: float = 0.01,
        l2: float = 1e-4,
        fraud_weight: float = 20.0,
    ) -> None:
        self.feature_names = tuple(feature_names)
        self.fraud_weight = fraud_weight
        self.model = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=l2),
        )
        self.learned = 0
        self.positives = 0

    def learn(self, features: Sequence[float], is_fraud: bool) -> None:
        """One step of SGD on one labeled feature vector (as logged when it was scored)."""
        x = dict(zip(self.feature_names, features, strict=True))
        weight = self.fraud_weight if is_fraud else 1.0
        # River's StandardScaler learns in learn_one; the weight only applies to the regression.
        self.model["StandardScaler"].learn_one(x)
        xs = self.model["StandardScaler"].transform_one(x)
        self.model["LogisticRegression"].learn_one(xs, bool(is_fraud), w=weight)
        self.learned += 1
        self.positives += int(bool(is_fraud))

    def learn_unlabeled(self, matrix: np.ndarray) -> None:
        """Supervised only: unlabeled transactions teach it nothing."""

    def score_one(self, features: Sequence[float]) -> float:
        x = dict(zip(self.feature_names, features, strict=True))
        return float(self.model.predict_proba_one(x).get(True, 0.0))

    def score_batch(self, matrix: np.ndarray) -> np.ndarray:
        """Fraud probability for each row of a (n, features) matrix."""
        return self.scorer().score_batch(matrix)

    def scorer(self) -> LinearScorer:
        """The current weights, frozen: what the scoring path applies until the next one."""
        scaler = self.model["StandardScaler"]
        lr = self.model["LogisticRegression"]
        names = self.feature_names
        return LinearScorer(
            self.name,
            np.array([scaler.means.get(f, 0.0) for f in names]),
            np.sqrt(np.array([scaler.vars.get(f, 0.0) for f in names])),
            np.array([lr.weights.get(f, 0.0) for f in names]),
            float(lr.intercept),
            self.learned > 0,
        )


@dataclass(frozen=True, slots=True)
class LinearScorer:
    """StandardScaler | LogisticRegression as arrays: River's predict_proba_one, vectorised."""

    name: str
    means: np.ndarray
    stds: np.ndarray
    weights: np.ndarray
    intercept: float
    ready: bool

    def score_batch(self, matrix: np.ndarray) -> np.ndarray:
        if not self.ready:
            return np.full(matrix.shape[0], 0.5)
        stds = self.stds
        safe = np.where(stds > 0, stds, 1.0)
        scaled = np.where(stds > 0, (matrix - self.means) / safe, 0.0)
        z = scaled @ self.weights + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-35.0, min(35.0, z))))
