"""The model registry in ClickHouse (streamlearn.models): one row per version, latest wins.

The table is a ReplacingMergeTree ordered by version with updated_at as its version column,
so a status change is a new insert of the whole row with a later updated_at; reads use FINAL.
Statuses change only through `apply`, with a transition of streamlearn.domain.lifecycle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd

from streamlearn.domain.features import FEATURE_VERSION
from streamlearn.domain.lifecycle import ModelStatus, Transition, check_move
from streamlearn.foundation.clock import now_ms, to_ms, utc
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore

TABLE = "models"
COLUMNS = (
    "version",
    "name",
    "created_at",
    "updated_at",
    "status",
    "train_start",
    "train_end",
    "rows_train",
    "rows_valid",
    "feature_names",
    "feature_version",
    "metrics",
    "sha256",
    "reason",
    "train_cpu_s",
    "train_wall_s",
    "trigger",
    "decision",
    "compared_with",
    "compared_rows",
    "gate_metrics",
    "champion_metrics",
    "gate",
    "live_decision",
    "live_rows",
    "live_metrics",
    "live_champion_metrics",
)
MAP_COLUMNS = (
    "metrics",
    "gate_metrics",
    "champion_metrics",
    "live_metrics",
    "live_champion_metrics",
)


@dataclass(frozen=True)
class ModelEntry:
    """One registry row; times are timezone-aware UTC datetimes."""

    version: str
    name: str
    created_at: dt.datetime
    status: ModelStatus
    train_start: dt.datetime
    train_end: dt.datetime
    rows_train: int
    rows_valid: int
    feature_names: Sequence[str]
    sha256: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    feature_version: str = FEATURE_VERSION
    reason: str = ""
    train_cpu_s: float = 0.0
    train_wall_s: float = 0.0
    updated_at: dt.datetime | None = None
    # Why the retrain ran (schedule, drift, manual, ...); reason is why the status is current.
    trigger: str = ""
    # The gate: its one-line decision, the champion it compared with, on how many holdout rows,
    # and both models' metrics on exactly those rows.
    decision: str = ""
    compared_with: str = ""
    compared_rows: int = 0
    gate_metrics: Mapping[str, float] = field(default_factory=dict)
    champion_metrics: Mapping[str, float] = field(default_factory=dict)
    # The gate's rules (GateConfig.describe()) the decisions were taken under.
    gate: str = ""
    # Shadow runs: the live comparison's decision, on how many matured shadow-scored
    # transactions, and both models' metrics (live_*) on exactly those transactions.
    live_decision: str = ""
    live_rows: int = 0
    live_metrics: Mapping[str, float] = field(default_factory=dict)
    live_champion_metrics: Mapping[str, float] = field(default_factory=dict)


# Which model scored a transaction, what it was trained on, how it did and why it was served:
# one query over the transactions and the registry (README, "Model lifecycle").
WHO_SCORED_SQL = """\
SELECT t.transaction_id, t.event_time, t.score, t.model_version, t.shadow_version,
       m.status, m.trigger, m.train_start, m.train_end, m.rows_train, m.feature_version,
       m.metrics['holdout_auc'] AS holdout_auc, m.metrics['holdout_ap'] AS holdout_ap,
       m.decision, m.compared_with, m.gate_metrics, m.champion_metrics, m.gate,
       m.live_decision, m.live_metrics, m.train_cpu_s
FROM streamlearn.transactions AS t FINAL
LEFT JOIN (SELECT * FROM streamlearn.models FINAL) AS m ON m.version = t.model_version
WHERE t.transaction_id = {id:String}"""


def as_utc(value: Any) -> dt.datetime:
    """A time as ClickHouse returns it (datetime, numpy or pandas; naive means UTC), aware."""
    return utc(to_ms(pd.Timestamp(value).to_pydatetime()))


def register(store: Store | RemoteStore, entry: ModelEntry) -> ModelEntry:
    """Insert (or supersede) the row of entry.version; returns the entry as written."""
    written = replace(
        entry, status=ModelStatus(entry.status), updated_at=entry.updated_at or _now()
    )
    row = asdict(written)
    row["status"] = str(written.status)
    row["feature_names"] = list(row["feature_names"])
    for c in MAP_COLUMNS:
        row[c] = {k: float(v) for k, v in row[c].items()}
    store.insert(TABLE, [[row[c] for c in COLUMNS]], COLUMNS)
    return written


def apply(store: Store | RemoteStore, transition: Transition, **recorded: Any) -> list[ModelEntry]:
    """Make a lifecycle transition's changes (its subject first, with `recorded` fields such as
    the gate's decision); raises LifecycleError before writing if a move is not allowed."""
    changes = list(transition)
    entries = []
    for change in changes:
        entry = get(store, change.version)
        if entry is None:
            raise KeyError(f"model version {change.version} is not in the registry")
        check_move(change.version, entry.status, change.status)
        entries.append(entry)
    written = []
    for i, (change, entry) in enumerate(zip(changes, entries, strict=True)):
        extra = recorded if i == 0 else {}
        written.append(_rewrite(store, entry, status=change.status, reason=change.reason, **extra))
    return written


def set_status(
    store: Store | RemoteStore, version: str, status: str, reason: str | None = None
) -> ModelEntry:
    """Rewrite the row of `version` with a new status (and reason, if given), bypassing the
    lifecycle's rules: for tests and repairs; the apps use `apply`."""
    return update(store, version, status=status, **({} if reason is None else {"reason": reason}))


def update(store: Store | RemoteStore, version: str, **changes: Any) -> ModelEntry:
    """Rewrite the row of `version` with some fields changed (reason, decision, ...)."""
    entry = get(store, version)
    if entry is None:
        raise KeyError(f"model version {version} is not in the registry")
    return _rewrite(store, entry, **changes)


def _rewrite(store: Store | RemoteStore, entry: ModelEntry, **changes: Any) -> ModelEntry:
    # updated_at decides which row survives: it must move forward even within one millisecond.
    after = entry.updated_at + dt.timedelta(milliseconds=1) if entry.updated_at else _now()
    return register(store, replace(entry, **changes, updated_at=max(_now(), after)))


def get(store: Store | RemoteStore, version: str) -> ModelEntry | None:
    """The current row of one version, or None."""
    df = _select(store, "WHERE version = {version:String}", {"version": version})
    return _entry(df.iloc[0]) if len(df) else None


def list_models(
    store: Store | RemoteStore, *, name: str | None = None, limit: int = 1000
) -> pd.DataFrame:
    """The registry, newest first (one row per version)."""
    where = "WHERE name = {name:String}" if name else ""
    return _select(store, where, {"name": name} if name else None, limit)


def entries(store: Store | RemoteStore, *, name: str | None = None) -> list[ModelEntry]:
    """Every version's current row, newest first."""
    df = list_models(store, name=name)
    return [_entry(row) for _, row in df.iterrows()]


def current_champion(store: Store | RemoteStore, name: str = "fraud") -> ModelEntry | None:
    """The newest version whose status is champion, or None before the first promotion."""
    return _newest_with(store, name, ModelStatus.CHAMPION)


def current_shadow(store: Store | RemoteStore, name: str = "fraud") -> ModelEntry | None:
    """The newest version whose status is shadow (under live comparison), or None."""
    return _newest_with(store, name, ModelStatus.SHADOW)


def _newest_with(store: Store | RemoteStore, name: str, status: str) -> ModelEntry | None:
    df = _select(
        store,
        "WHERE name = {name:String} AND status = {status:String}",
        {"name": name, "status": status},
        limit=1,
    )
    return _entry(df.iloc[0]) if len(df) else None


def _select(
    store: Store | RemoteStore, where: str, params: dict[str, Any] | None, limit: int = 1000
) -> pd.DataFrame:
    df = store.query_df(
        f"SELECT {', '.join(COLUMNS)} FROM streamlearn.{TABLE} FINAL {where} "
        f"ORDER BY created_at DESC, version DESC LIMIT {int(limit)}",
        params,
    )
    return df if df is not None else pd.DataFrame(columns=list(COLUMNS))


def _entry(row: pd.Series) -> ModelEntry:
    values = {c: row[c] for c in COLUMNS}
    for c in ("created_at", "updated_at", "train_start", "train_end"):
        values[c] = as_utc(values[c])
    values["feature_names"] = list(values["feature_names"])
    for c in MAP_COLUMNS:
        values[c] = {str(k): float(v) for k, v in dict(values[c] or {}).items()}
    for c in ("rows_train", "rows_valid", "compared_rows", "live_rows"):
        values[c] = int(values[c])
    for c in ("train_cpu_s", "train_wall_s"):
        values[c] = float(values[c])
    values["status"] = ModelStatus(values["status"])
    return ModelEntry(**values)


def _now() -> dt.datetime:
    return utc(now_ms())
