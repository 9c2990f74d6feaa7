"""Batch retraining: ClickHouse history -> LightGBM -> gate -> the models topic."""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Exports load on first use, so a worker importing batch_retrain.release for verification
# does not also load scikit-learn, pandas and the training pipeline.
_EXPORTS = {
    "Decision": "batch_retrain.pipeline",
    "RetrainResult": "batch_retrain.pipeline",
    "decide": "batch_retrain.pipeline",
    "run_retrain": "batch_retrain.pipeline",
    "current_champion": "batch_retrain.registry",
    "list_models": "batch_retrain.registry",
    "build_release": "batch_retrain.release",
    "load_booster": "batch_retrain.release",
    "verify_release": "batch_retrain.release",
    "TrainingSet": "batch_retrain.training_set",
    "build_training_set": "batch_retrain.training_set",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'batch_retrain' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
