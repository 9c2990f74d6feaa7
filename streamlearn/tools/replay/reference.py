"""The offline reference of a replay: a LightGBM trained by the retrain's own code
(batch_retrain: build_training_set, train, refit_on_every_row) on every matured row up to a
retrain point, with no streaming in between (no gate, no hot swap, no held-out newest rows:
early stopping picks the rounds, then the model is refit on every row). What it scores on the
following week, beside what was served, is the streaming loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from streamlearn.batch_retrain.train import refit_on_every_row, train
from streamlearn.batch_retrain.training_set import build_training_set
from streamlearn.foundation.errors import NotEnoughData
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore


@dataclass(frozen=True)
class ReferenceModel:
    """The reference trained as of `as_of` (epoch ms), or why there is none (`note`)."""

    as_of: int
    booster: lgb.Booster | None
    feature_names: tuple[str, ...] = ()
    rows: int = 0
    positives: int = 0
    note: str = ""

    def score(self, X: np.ndarray) -> np.ndarray:
        """Scores of rows (columns in feature_names order); NaN without a model."""
        if self.booster is None or not len(X):
            return np.full(len(X), np.nan)
        return np.asarray(self.booster.predict(X, num_threads=2), dtype=np.float64)


def train_reference(
    store: Store | RemoteStore, as_of_ms: int, maturity_s: float, *, num_threads: int = 2
) -> ReferenceModel:
    """The reference as of as_of_ms; a ReferenceModel without booster if the history is short."""
    try:
        ts = build_training_set(store, maturity_s=maturity_s, as_of_ms=as_of_ms)
    except NotEnoughData as exc:
        return ReferenceModel(as_of_ms, None, note=str(exc))
    result = refit_on_every_row(ts, train(ts, num_threads=num_threads), num_threads=num_threads)
    return ReferenceModel(
        as_of_ms,
        result.booster,
        ts.feature_names,
        rows=ts.rows_available,
        positives=ts.positives_available,
    )
