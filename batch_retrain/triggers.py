"""When to retrain: pure decision from guardrails (running, labels, cool-down) and triggers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TriggerConfig:
    schedule_s: float = 86400
    cooldown_s: float = 3600
    min_matured_labels: int = 1000
    auc_floor: float = 0.80
    min_labels_for_metric: int = 500


@dataclass(frozen=True)
class TriggerInputs:
    now_ms: int
    last_run_ms: int | None
    running: bool
    matured_labels: int
    drift_events_since_last_run: int
    champion_online_auc: float | None
    champion_online_labels: int
    # A shadow under live comparison: a retrain now would replace it before it is judged.
    shadow_pending: str | None = None
    # What drifted ("data amount", "concept lightgbm", ...), for the recorded reason.
    drift_subjects: tuple[str, ...] = ()


def decide_trigger(cfg: TriggerConfig, inputs: TriggerInputs) -> tuple[str | None, str]:
    """(trigger name or None, one-line reason); guardrails first, then drift, metric, schedule."""
    i = inputs
    if i.running:
        return None, "a retrain is running"
    if i.shadow_pending:
        return None, f"shadow {i.shadow_pending} is under live comparison"
    if i.matured_labels < cfg.min_matured_labels:
        return None, f"{i.matured_labels} matured labels < minimum {cfg.min_matured_labels}"
    since_s = None if i.last_run_ms is None else (i.now_ms - i.last_run_ms) / 1000
    if since_s is not None and since_s < cfg.cooldown_s:
        return None, f"cool-down: last run {since_s:.0f}s ago < {cfg.cooldown_s:.0f}s"
    if i.drift_events_since_last_run > 0:
        what = f" ({', '.join(i.drift_subjects)})" if i.drift_subjects else ""
        return "drift", f"{i.drift_events_since_last_run} drift event(s) since the last run{what}"
    auc = i.champion_online_auc
    if (
        auc is not None
        and auc == auc  # not NaN
        and i.champion_online_labels >= cfg.min_labels_for_metric
        and auc < cfg.auc_floor
    ):
        return "metric", (
            f"champion online AUC {auc:.3f} < floor {cfg.auc_floor:.3f} "
            f"on {i.champion_online_labels} labels"
        )
    if since_s is None:
        return "schedule", "no retrain has run yet"
    if since_s >= cfg.schedule_s:
        return "schedule", f"last run {since_s:.0f}s ago >= schedule {cfg.schedule_s:.0f}s"
    return None, f"no trigger: last run {since_s:.0f}s ago, no drift, online metric ok"
