"""Watch the store and retrain when a trigger fires: drift, a low online metric, or the schedule.

Each round first lets a shadow model's live comparison decide (batch_retrain/shadow.py), then
checks the triggers (batch_retrain/triggers.py) behind their guardrails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.drift_feed import DriftFeed, SeenDrift, merge_drift
from streamlearn.batch_retrain.pipeline import run_retrain
from streamlearn.batch_retrain.shadow import check_shadow
from streamlearn.batch_retrain.triggers import TriggerConfig, TriggerInputs, decide_trigger
from streamlearn.foundation.clock import now_ms, to_ms
from streamlearn.foundation.errors import NotEnoughData, StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore

DB = "streamlearn"


def _scalar(store: Store | RemoteStore, sql: str, params: dict[str, Any] | None = None) -> Any:
    df = store.query_df(sql, params)
    return None if df is None or not len(df) else df.iloc[0, 0]


def gather_inputs(
    store: Store | RemoteStore,
    now: int,
    last_run_ms: int | None,
    topic_events: Iterable[SeenDrift] = (),
) -> TriggerInputs:
    """Read what decide_trigger needs with a few small queries; drift events from the table
    and from the drift-events topic (topic_events) count once each."""
    labels = _scalar(store, f"SELECT count() FROM {DB}.outcomes FINAL")
    since = {"since": -1 if last_run_ms is None else int(last_run_ms)}
    _, rows = store.query_rows(
        "SELECT toUnixTimestamp64Milli(time), kind, subject, statistic, threshold "
        f"FROM {DB}.drift_events FINAL WHERE toUnixTimestamp64Milli(time) > {{since:Int64}} "
        "LIMIT 100000",
        since,
    )
    stored = [SeenDrift(int(t), k, s, float(st), float(th)) for t, k, s, st, th in rows]
    # What drifted most (statistic over its threshold), for the recorded reason.
    drift, subjects = merge_drift(stored, topic_events, since_ms=last_run_ms)
    df = store.query_df(
        f"SELECT auc_rolling, auc, labels FROM {DB}.online_metrics "
        "WHERE scorer = 'lightgbm' ORDER BY time DESC LIMIT 1"
    )
    auc, online_labels = None, 0
    if df is not None and len(df):
        row = df.iloc[0]
        rolling = float(row["auc_rolling"])
        auc = rolling if rolling == rolling else float(row["auc"])
        online_labels = int(row["labels"])
    return TriggerInputs(
        now_ms=now,
        last_run_ms=last_run_ms,
        running=False,  # the watch loop runs one retrain at a time
        matured_labels=int(labels or 0),
        drift_events_since_last_run=drift,
        drift_subjects=subjects,
        champion_online_auc=auc,
        champion_online_labels=online_labels,
        shadow_pending=shadow.version if (shadow := registry.current_shadow(store)) else None,
    )


def last_run_ms(store: Store | RemoteStore) -> int | None:
    """created_at of the newest registry row, in ms, or None if nothing was ever trained."""
    df = registry.list_models(store, limit=1)
    if not len(df):
        return None
    return to_ms(registry.as_utc(df.iloc[0]["created_at"]))


def watch(
    settings: Settings,
    store: Store | RemoteStore,
    cfg: TriggerConfig | None = None,
    *,
    interval_s: float = 60,
    max_runs: int | None = None,
    max_rounds: int | None = None,
    on_event: Callable[[str], Any] = print,
    shadow_options: dict[str, Any] | None = None,
    **retrain_options: Any,
) -> int:
    """Check the triggers every interval_s and retrain when one fires; returns the runs started.

    shadow_options go to check_shadow (gate, maturity_s, min_labels, ...), run each round;
    max_runs / max_rounds stop the loop after that many retrains / rounds (None: forever).
    """
    cfg = cfg or TriggerConfig()
    last = last_run_ms(store)
    runs = rounds = 0
    feed = DriftFeed(settings)
    try:
        while (max_runs is None or runs < max_runs) and (max_rounds is None or rounds < max_rounds):
            rounds += 1
            _shadow_round(settings, store, on_event, shadow_options or {})
            now = now_ms()
            trigger, reason = decide_trigger(cfg, gather_inputs(store, now, last, feed.poll()))
            if trigger is None:
                on_event(f"no retrain: {reason}")
            else:
                runs, last = runs + 1, now
                _retrain(settings, store, trigger, reason, on_event, retrain_options)
                if max_runs is not None and runs >= max_runs:
                    break
            if max_rounds is not None and rounds >= max_rounds:
                break
            time.sleep(interval_s)
    except KeyboardInterrupt:
        on_event("watch stopped")
    finally:
        feed.close()
    return runs


def _shadow_round(
    settings: Settings,
    store: Store | RemoteStore,
    on_event: Callable[[str], Any],
    options: dict[str, Any],
) -> None:
    """Let a shadow's live comparison decide first: a retrain would replace it unjudged."""
    try:
        check = check_shadow(settings, store, **options)
        if check.shadow is not None:
            on_event(f"shadow {check.shadow}: {check.action} — {check.reason}")
    except StreamlearnError as e:
        on_event(f"shadow check failed: {e}")


def _retrain(
    settings: Settings,
    store: Store | RemoteStore,
    trigger: str,
    reason: str,
    on_event: Callable[[str], Any],
    options: dict[str, Any],
) -> None:
    on_event(f"retrain ({trigger}): {reason}")
    try:
        # The registry's trigger column keeps the whole why: "drift: 2 drift ...".
        r = run_retrain(settings, store, reason=f"{trigger}: {reason}", **options)
        on_event(f"{r.version}: {r.status} ({trigger}) — {r.decision.reason}")
    except NotEnoughData as e:
        on_event(f"retrain ({trigger}) skipped: {e}")
    except StreamlearnError as e:
        on_event(f"retrain ({trigger}) failed: {e}")
