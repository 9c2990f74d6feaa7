"""`streamlearn replay`: a file of past transactions through the production path (a worker,
the label delay, retrains behind the gate), then the quality per event week and scorer beside
an offline reference, and the report."""

from streamlearn.tools.replay.options import ReplayOptions, ReplayProgress, Retrain
from streamlearn.tools.replay.runner import run_replay

__all__ = ["ReplayOptions", "ReplayProgress", "Retrain", "run_replay"]
