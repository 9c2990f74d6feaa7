"""Shadow runs: judge a shadow model against the champion on the live transactions both scored.

Workers log, for every transaction, the champion's score (scores['lightgbm'], model_version)
and the shadow's (scores['shadow'], shadow_version), both as served at event time. Once enough
of those transactions have matured labels (the training set's point-in-time rule), the same
gate as offline (batch_retrain/gate.py, metrics keyed "live_") promotes the shadow (published
as champion: every worker swaps) or rejects it (a tombstone clears the shadow slot on every
worker), and the registry records why with both models' live metrics. `live_verdict` is the
pure part; `check_shadow` reads ClickHouse, publishes and records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.artifacts import load_release
from streamlearn.batch_retrain.gate import (
    DEFAULT_GATE,
    Decision,
    GateConfig,
    gate_from_settings,
    judge,
)
from streamlearn.batch_retrain.metrics import evaluate
from streamlearn.batch_retrain.serving import serve, withdraw
from streamlearn.batch_retrain.training_set import DB, data_clock, fraud_ids_sql
from streamlearn.domain import lifecycle
from streamlearn.foundation.clock import DAY_S
from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore

PREFIX = "live_"

# The transactions the shadow and this champion both scored, matured at the data clock, with
# their label known then (fraud: the latest outcome says so; no outcome: legit).
LIVE_SQL = f"""
SELECT toUnixTimestamp64Milli(event_time) AS et,
       toUInt8(transaction_id IN ({fraud_ids_sql()})) AS y,
       scores['shadow'] AS shadow_score,
       scores['lightgbm'] AS champion_score
FROM {DB}.transactions FINAL
WHERE shadow_version = {{shadow:String}}
  AND model_version = {{champion:String}}
  AND mapContains(scores, 'shadow') AND mapContains(scores, 'lightgbm')
  AND event_time <= fromUnixTimestamp64Milli({{cutoff:Int64}}, 'UTC')
ORDER BY et, transaction_id"""


@dataclass(frozen=True)
class LiveSample:
    """Matured transactions scored by both models: label, both scores, event time (ms)."""

    y: np.ndarray
    shadow: np.ndarray
    champion: np.ndarray
    event_time: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.y)

    @property
    def positives(self) -> int:
        return int(np.sum(self.y))


@dataclass(frozen=True)
class Verdict:
    """wait (not enough matured labels yet), promote or reject; reason is one line."""

    action: str
    reason: str
    decision: Decision | None = None
    shadow_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    rows: int = 0


def live_verdict(
    sample: LiveSample,
    *,
    config: GateConfig = DEFAULT_GATE,
    min_labels: int = 1000,
    min_positives: int = 10,
    champion_version: str | None = None,
) -> Verdict:
    """Wait until min_labels matured transactions (min_positives of them fraud, and some legit),
    then apply the offline gate's rules to both models' metrics on exactly those rows."""
    n, pos = sample.rows, sample.positives
    if n < min_labels or pos < min_positives or pos == n:
        return Verdict(
            "wait",
            f"{n} matured shadow-scored transactions ({pos} fraud); the live comparison needs "
            f">= {min_labels} with >= {min_positives} fraud and some legit",
            rows=n,
        )
    w = np.ones(n)

    def live(score: np.ndarray) -> dict[str, float]:
        measured = evaluate(sample.y, score, w, sample.event_time)
        return {PREFIX + k: v for k, v in measured.items()}

    ours, theirs = live(sample.shadow), live(sample.champion)
    decision = judge(
        ours,
        theirs,
        config=config.with_prefix(PREFIX),
        champion_version=champion_version,
        compared_rows=n,
    )
    return Verdict(
        "promote" if decision.promote else "reject",
        f"live: {decision.reason}",
        decision,
        ours,
        theirs,
        n,
    )


def live_sample(
    store: Store | RemoteStore,
    shadow_version: str,
    champion_version: str,
    *,
    maturity_s: float,
    as_of_ms: int | None = None,
) -> LiveSample:
    """The matured transactions both models scored, from ClickHouse (one query)."""
    as_of = as_of_ms if as_of_ms is not None else data_clock(store)
    params = {
        "shadow": shadow_version,
        "champion": champion_version,
        "as_of": as_of,
        "cutoff": as_of - round(maturity_s * 1000),
    }
    df = store.query_df(LIVE_SQL, params)
    if df is None or not len(df):
        empty = np.empty(0)
        return LiveSample(empty.astype(np.int8), empty, empty, empty.astype(np.int64))
    return LiveSample(
        df["y"].to_numpy(dtype=np.int8),
        df["shadow_score"].to_numpy(dtype=np.float64),
        df["champion_score"].to_numpy(dtype=np.float64),
        df["et"].to_numpy(dtype=np.int64),
    )


@dataclass(frozen=True)
class ShadowCheck:
    """What one check did: the shadow (None if none), the action taken and why."""

    shadow: str | None
    champion: str | None
    action: str
    reason: str
    rows: int = 0


def check_shadow(
    settings: Settings,
    store: Store | RemoteStore,
    *,
    gate: GateConfig | None = None,
    maturity_s: float | None = None,
    min_labels: int | None = None,
    min_positives: int | None = None,
    as_of_ms: int | None = None,
    name: str = "fraud",
) -> ShadowCheck:
    """Compare the registry's shadow with the champion live; promote, reject or wait.

    Defaults (gate, maturity, minimums) come from settings. Raises BrokerUnavailable if the
    promotion or withdrawal cannot be published.
    """
    gate = gate or gate_from_settings(settings)
    shadow = registry.current_shadow(store, name)
    if shadow is None:
        return ShadowCheck(None, None, "none", "no shadow model")
    champion = registry.current_champion(store, name)
    if champion is None:
        raise StreamlearnError(
            f"shadow {shadow.version} has no champion to be compared with: "
            f"`streamlearn models rollback {shadow.version}` serves it"
        )
    seconds = maturity_s if maturity_s is not None else settings.label_maturity_days * DAY_S
    sample = live_sample(
        store, shadow.version, champion.version, maturity_s=seconds, as_of_ms=as_of_ms
    )
    verdict = live_verdict(
        sample,
        config=gate,
        min_labels=min_labels if min_labels is not None else settings.shadow_min_labels,
        min_positives=(
            min_positives if min_positives is not None else settings.shadow_min_positives
        ),
        champion_version=champion.version,
    )
    if verdict.action != "wait":
        _act(settings, store, verdict, shadow, champion, gate)
    return ShadowCheck(
        shadow.version, champion.version, verdict.action, verdict.reason, verdict.rows
    )


def _act(
    settings: Settings,
    store: Store | RemoteStore,
    verdict: Verdict,
    shadow: registry.ModelEntry,
    champion: registry.ModelEntry,
    gate: GateConfig,
) -> None:
    """Promote the shadow (every worker swaps) or reject it (every worker drops it)."""
    recorded: dict[str, Any] = {
        "live_decision": verdict.reason,
        "live_rows": verdict.rows,
        "live_metrics": verdict.shadow_metrics,
        "live_champion_metrics": verdict.champion_metrics,
        "gate": gate.describe(),
    }
    if verdict.action == "reject":
        moves = lifecycle.reject(shadow.version, verdict.reason)
        withdraw(settings, store, moves, name=shadow.name, recorded=recorded)
        return
    release = load_release(store, shadow.version)
    if release is None:
        raise StreamlearnError(f"no stored release of shadow {shadow.version}: retrain instead")
    moves = lifecycle.promote(
        shadow.version, replacing=champion.version, reason=verdict.reason, live=True
    )
    # A champion published after the shadow (a manual retrain) orders after it: the
    # promotion must then be a signed rollback of it, or workers would refuse it as older.
    overtaken = champion.created_at > shadow.created_at
    serve(
        settings,
        store,
        release,
        moves,
        rolls_back=champion.version if overtaken else None,
        clear_shadow=True,
        what="promote the shadow",
        recorded=recorded,
    )
