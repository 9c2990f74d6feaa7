"""What a replay is asked, what it plans, and what it reports while it runs (plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from streamlearn.foundation.clock import DAY_MS
from streamlearn.foundation.settings import Settings
from streamlearn.learners.ranking import ALERTS_PER_DAY
from streamlearn.tools.replay.schedule import Step


@dataclass(frozen=True)
class ReplayOptions:
    """What `streamlearn replay` was asked (durations in ms of event time)."""

    file: Path
    mapping: dict[str, str]
    out_dir: Path
    label_delay_ms: int | None = 7 * DAY_MS  # None: the file's outcome_time_column
    outcome_time_column: str | None = None
    legit_share: float = 0.1
    warmup_ms: int = 0
    retrain_every_ms: int | None = 7 * DAY_MS
    step_ms: int = DAY_MS
    maturity_ms: int | None = None  # None: the label delay, else label_maturity_days
    top_k: int = ALERTS_PER_DAY
    seed: int = 7
    keep_topics: bool = False
    web_port: int | None = None
    stall_s: float = 180.0

    def maturity_s(self, settings: Settings) -> float:
        ms = self.maturity_ms or self.label_delay_ms
        return ms / 1000 if ms else settings.label_maturity_days * 86_400


@dataclass(frozen=True)
class Retrain:
    """One retrain of the replay: as of when (event time), and what the gate decided."""

    as_of: int
    version: str
    status: str
    note: str = ""
    holdout_auc: float = float("nan")
    holdout_ap: float = float("nan")
    train_rows: int = 0


@dataclass
class ReplayProgress:
    """What the publisher has reached; on_progress gets it after every step."""

    name: str = ""
    phase: str = "reading"
    first_ms: int = 0
    last_ms: int = 0
    event_ms: int = 0
    transactions: int = 0
    outcomes: int = 0
    scored: int = 0
    model_version: str = "none"
    retrains: list[Retrain] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase


@dataclass(frozen=True)
class Plan:
    """The history cut into steps, its outcomes, retrain points and scored window."""

    outcomes: pd.DataFrame
    not_due: int
    points: list[int]
    steps: list[Step]
    scored_start: int
