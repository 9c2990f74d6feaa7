"""A Hoeffding adaptive tree that learns every fraud and a weighted sample of legit outcomes.

Cost (measured here on the worker's 26 features, see tests/unit/test_learners_registry.py):
~100 µs per learn_one; at legit_fraction=0.1 that is ~11 µs per outcome offered. Scoring goes
through River per row (~7 µs per row), ~1.4% of a core at 2,000 events/s. The weighted sample
keeps the learned class prior unbiased (each legit one learned weighs 1/fraction).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import tree


class SampledTree:
    """HoeffdingAdaptiveTreeClassifier learning all frauds and `legit_fraction` of legit ones."""

    name = "river_hat"

    def __init__(
        self,
        feature_names: Sequence[str],
        *,
        legit_fraction: float = 0.1,
        grace_period: int = 200,
        max_depth: int = 12,
        seed: int = 7,
    ) -> None:
        if not 0 < legit_fraction <= 1:
            raise ValueError(f"legit_fraction must be in (0, 1], got {legit_fraction}")
        self.feature_names = tuple(feature_names)
        self.legit_fraction = legit_fraction
        self.model = tree.HoeffdingAdaptiveTreeClassifier(
            grace_period=grace_period, max_depth=max_depth, seed=seed
        )
        self._rng = random.Random(seed)
        self.learned = 0  # outcomes actually learned from (after sampling)
        self.seen = 0  # outcomes offered
        self.positives = 0

    def learn(self, features: Sequence[float], is_fraud: bool) -> None:
        self.seen += 1
        weight = 1.0
        if not is_fraud:
            if self._rng.random() >= self.legit_fraction:
                return
            weight = 1.0 / self.legit_fraction
        x = dict(zip(self.feature_names, features, strict=True))
        self.model.learn_one(x, bool(is_fraud), w=weight)
        self.learned += 1
        self.positives += int(bool(is_fraud))

    def learn_unlabeled(self, matrix: np.ndarray) -> None:
        """Supervised only: unlabeled transactions teach it nothing."""

    def score_batch(self, matrix: np.ndarray) -> np.ndarray:
        return self.scorer().score_batch(matrix)

    def scorer(self) -> RiverScorer:
        """A copy of the model as it is now (the scoring path must not see it half-learned)."""
        return RiverScorer(self.feature_names, copy.deepcopy(self.model), self.positives > 0)


@dataclass(frozen=True, slots=True)
class RiverScorer:
    """A frozen River classifier, scored row by row (~7-30 us a row: see learners/registry.py)."""

    feature_names: tuple[str, ...]
    model: Any
    ready: bool

    def score_batch(self, matrix: np.ndarray) -> np.ndarray:
        if not self.ready:
            return np.full(matrix.shape[0], 0.5)
        names = self.feature_names
        predict = self.model.predict_proba_one
        return np.fromiter(
            (predict(dict(zip(names, row, strict=True))).get(True, 0.0) for row in matrix.tolist()),
            dtype=np.float64,
            count=matrix.shape[0],
        )
