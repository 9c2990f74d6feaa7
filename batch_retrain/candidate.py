"""A trained booster becomes a registered candidate: its signed release (under a version no
other model holds), its registry row and its stored release.

A booster refit on every row (train.refit_on_every_row) learned the holdout too: its window
(train_end) then ends with the holdout, so a later gate never judges it on rows it saw, and its
metrics stay the judged model's holdout figures, with refit_rows saying so."""

from __future__ import annotations

from typing import Any

import numpy as np

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.artifacts import save_release
from streamlearn.batch_retrain.train import TrainResult
from streamlearn.batch_retrain.training_set import TrainingSet
from streamlearn.domain.lifecycle import ModelStatus
from streamlearn.domain.release import build_release, make_version, resign
from streamlearn.foundation.clock import utc
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore
from streamlearn.learners.drift import reference_bins


def register_candidate(
    store: Store | RemoteStore,
    ts: TrainingSet,
    result: TrainResult,
    *,
    signing_key: bytes | None,
    reason: str,
    name: str,
    gate: str,
) -> dict[str, Any]:
    """Build, register (status candidate) and store the release; returns it."""
    # A refit learned validation too, and the holdout if it is the model to serve.
    learned = [ts.train, *([ts.valid] if result.refit_rows else [])]
    learned += [ts.holdout] if result.learned_holdout else []
    release = build_release(
        result.booster,
        feature_names=ts.feature_names,
        train_start=ts.train_start,
        train_end=ts.holdout_end if result.learned_holdout else ts.train_end,
        metrics=result.metrics,
        signing_key=signing_key,
        reason=reason,
        name=name,
        # The rows the booster learned from, weighted back to the population when legit rows
        # were sampled: the workers measure data drift against them.
        reference_bins=reference_bins(
            np.concatenate([s.X for s in learned]),
            ts.feature_names,
            weights=np.concatenate([s.w for s in learned]),
        ),
    )
    release = _unique(store, release, signing_key)
    registry.register(store, _entry(release, ts, result, reason=reason, gate=gate))
    save_release(store, release)
    return release


def _unique(
    store: Store | RemoteStore, release: dict[str, Any], signing_key: bytes | None
) -> dict[str, Any]:
    """The same model bytes retrained within one second: the next second keeps it unique."""
    while registry.get(store, release["version"]) is not None:
        created = release["created_at"] + 1000
        version = make_version(release["sha256"], utc(created))
        release = resign(release, signing_key, created_at=created, version=version)
    return release


def _entry(
    release: dict[str, Any], ts: TrainingSet, result: TrainResult, *, reason: str, gate: str
) -> registry.ModelEntry:
    return registry.ModelEntry(
        version=release["version"],
        name=release["name"],
        created_at=utc(release["created_at"]),
        status=ModelStatus.CANDIDATE,
        train_start=utc(ts.train_start),
        train_end=utc(release["train_end"]),
        rows_train=ts.train.rows,
        rows_valid=ts.valid.rows,
        feature_names=ts.feature_names,
        sha256=release["sha256"],
        metrics=result.metrics,
        reason=reason,
        train_cpu_s=result.train_cpu_s,
        train_wall_s=result.train_wall_s,
        trigger=reason,
        gate=gate,
    )
