"""The online learners a worker runs, chosen by a comma list of keys (e.g. "lr,hat,hst").

| key | learner, learns from | learn cost | score cost per row |
|---|---|---|---|
| `lr` | scaled LogisticRegression (frauds x20), every outcome | ~19 µs | ~0.2 µs (numpy) |
| `hat` | HoeffdingAdaptiveTree, every fraud + 10% of legit (w=10) | ~11 µs/outcome | ~7 µs |
| `arf` | adaptive random forest (5 trees), every fraud + 10% legit (w=10) | ~13 µs | ~29 µs |
| `hst` | HalfSpaceTrees (10 trees, height 6), every transaction | ~7 µs/transaction | ~2 µs |

(hat: ~100 µs per learn_one actually made; scores in batches of 500, lr and hst via numpy.
arf follows a concept change that hat lags on: see learners/forest.py; its scoring costs ~6% of
a core at 2,000 events/s.)
So at 2,000 events/s with 0.5% fraud, hst learning adds ~1.4% of a core and hat scoring ~1.4%;
learning from outcomes costs ~30 µs per outcome with all three.
26 features, measured on this machine by tests/unit/test_learners_registry.py::test_costs (printed
with -s); they vary with load, their ratios do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from streamlearn.learners.anomaly import AnomalyScorer
from streamlearn.learners.forest import SampledForest
from streamlearn.learners.online import OnlineLogistic
from streamlearn.learners.tree import SampledTree


class Learner(Protocol):
    """What the worker calls on every learner."""

    name: str

    def score_batch(self, matrix: np.ndarray) -> np.ndarray: ...

    def learn(self, features: Sequence[float], is_fraud: bool) -> None: ...

    def learn_unlabeled(self, matrix: np.ndarray) -> None: ...
    def scorer(self) -> Any:
        """A frozen copy with score_batch(matrix), for the scoring path."""
        ...


FACTORIES: dict[str, Callable[[Sequence[str]], Learner]] = {
    "lr": OnlineLogistic,
    "hat": SampledTree,
    "arf": SampledForest,
    "hst": AnomalyScorer,
}


def parse_keys(spec: str) -> list[str]:
    """The learner keys of a comma list, in order, once each; ValueError names the bad one."""
    keys: list[str] = []
    for raw in spec.split(","):
        key = raw.strip().lower()
        if not key:
            continue
        if key not in FACTORIES:
            known = ", ".join(FACTORIES)
            raise ValueError(f"unknown learner {key!r} (known: {known})")
        if key not in keys:
            keys.append(key)
    if "lr" not in keys:
        keys.insert(0, "lr")  # river_score in every Prediction is the lr score
    return keys


def build_learners(spec: str, feature_names: Sequence[str]) -> list[Learner]:
    """Fresh learners for a spec such as "lr,hat,hst" (lr is always included, first)."""
    return [FACTORIES[key](feature_names) for key in parse_keys(spec)]
