"""The offline reference of a replay: a LightGBM trained by the retrain's own code
(batch_retrain: build_training_set, train) on every matured row up to a retrain point, with no
streaming in between (no gate, no hot swap, no held-out newest rows: early stopping picks the
rounds on the newest 15%, then the model is refit on all of them). What it scores on the
following week, beside what was served, is the streaming loss.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from streamlearn.batch_retrain.train import train
from streamlearn.batch_retrain.training_set import Split, TrainingSet, build_training_set
from streamlearn.foundation.errors import NotEnoughData
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore

# Early stopping on the newest 15% of the matured rows (a thin holdout, which
# build_training_set insists on, folded into validation); then a refit on every row.
FRACTIONS = (0.85, 0.10, 0.05)
FALLBACK = (0.7, 0.15, 0.15)  # when the thin holdout holds no fraud


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


def _joined(*splits: Split) -> Split:
    return Split(
        np.concatenate([s.X for s in splits]),
        np.concatenate([s.y for s in splits]),
        np.concatenate([s.w for s in splits]),
        np.concatenate([s.event_time for s in splits]),
    )


def fit_on_every_row(ts: TrainingSet, num_threads: int) -> lgb.Booster:
    """Boost on the oldest rows with early stopping on the newest (validation and the thin
    holdout), then refit on every matured row for the rounds that stopping chose."""
    newest = _joined(ts.valid, ts.holdout)
    first = train(dataclasses.replace(ts, valid=newest), num_threads=num_threads)
    rounds = max(1, first.best_iteration)
    every = dataclasses.replace(ts, train=_joined(ts.train, newest), valid=newest)
    # The validation rows are inside the training rows now: its loss only falls, so no round
    # is cut short and the refit boosts exactly `rounds` rounds.
    return train(
        every, num_threads=num_threads, num_boost_round=rounds, early_stopping_rounds=rounds + 1
    ).booster


def train_reference(
    store: Store | RemoteStore, as_of_ms: int, maturity_s: float, *, num_threads: int = 2
) -> ReferenceModel:
    """The reference as of as_of_ms; a ReferenceModel without booster if the history is short."""
    try:
        try:
            ts = build_training_set(
                store, maturity_s=maturity_s, as_of_ms=as_of_ms, fractions=FRACTIONS
            )
        except NotEnoughData:
            ts = build_training_set(
                store, maturity_s=maturity_s, as_of_ms=as_of_ms, fractions=FALLBACK
            )
    except NotEnoughData as exc:
        return ReferenceModel(as_of_ms, None, note=str(exc))
    return ReferenceModel(
        as_of_ms,
        fit_on_every_row(ts, num_threads),
        ts.feature_names,
        rows=ts.rows_available,
        positives=ts.positives_available,
    )
