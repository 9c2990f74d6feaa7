"""The end of a replay, while its worker still owns the store: the offline references, the
weekly table per scorer, its CSV and JSON, and the report with the backtest chart first."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from streamlearn.foundation.clock import DAY_MS, utc
from streamlearn.foundation.store.access import RemoteStore, worker_store
from streamlearn.report import backtest_chart, build_report
from streamlearn.tools.replay.options import Plan, ReplayOptions, ReplayProgress
from streamlearn.tools.replay.reference import ReferenceModel, train_reference
from streamlearn.tools.replay.results import (
    REFERENCE,
    fetch_scored,
    order_scorers,
    reference_scores,
    streaming_loss,
    weekly_table,
    with_labels,
)
from streamlearn.tools.replay.schedule import weeks
from streamlearn.tools.replay.session import Session
from streamlearn.tools.replay.source import History

NOT_SCORES = ("transaction_id", "event_time", "model_version", "is_fraud")
WORKER_FIGURES = ("transactions", "outcomes", "learned", "dead_letters", "model_version")


def finish(
    session: Session,
    history: History,
    the_plan: Plan,
    options: ReplayOptions,
    progress: ReplayProgress,
    started: float,
) -> dict[str, Any]:
    """Measure, write weekly.csv, weekly.json and the report into options.out_dir; the summary
    (what weekly.json holds, plus the table and the loss as frames, and the files)."""
    settings = session.settings
    store = worker_store(settings)
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    points = [p for p in the_plan.points if p >= the_plan.scored_start]
    maturity_s = options.maturity_s(settings)
    references = [train_reference(store, p - 1, maturity_s) for p in points]
    progress.timings["references_s"] = time.perf_counter() - t0
    table = measure(store, history, the_plan.scored_start, progress.last_ms, references, options)
    loss = streaming_loss(table)
    summary = _summary(history, the_plan, options, progress, maturity_s)
    summary |= {
        "references": [
            {"as_of": _iso(r.as_of), "rows": r.rows, "frauds": r.positives, "note": r.note}
            for r in references
        ],
        "worker": {k: session.status().get(k) for k in WORKER_FIGURES},
        "streaming_loss": {w: dict(v) for w, v in loss.iterrows()} if not loss.empty else {},
        "weekly": table.to_dict(orient="records"),
    }
    files = _write(out, table, summary)
    label = f"replay {progress.name} of {Path(options.file).name} (state: {settings.state_dir})"
    t1 = time.perf_counter()
    files["report"] = build_report(store.query_df, out, None, label, [backtest_chart(table)])
    progress.timings["report_s"] = time.perf_counter() - t1
    summary["timings"] = progress.timings | {"total_s": time.perf_counter() - started}
    files["json"].write_text(json.dumps(_clean(summary), indent=2) + "\n")
    return summary | {"files": files, "table": table, "loss": loss}


def measure(
    store: RemoteStore,
    history: History,
    start: int,
    last: int,
    references: list[ReferenceModel],
    options: ReplayOptions,
) -> pd.DataFrame:
    """The weekly table: the scored window's rows as served, the file's labels, the reference."""
    frame = history.frame
    labels = pd.Series(frame["is_fraud"].to_numpy(), index=frame["transaction_id"].to_numpy())
    rows = with_labels(fetch_scored(store, start, last + 1), labels)
    rows[REFERENCE] = reference_scores(rows, references)
    names = [c for c in rows.columns if c not in NOT_SCORES and not c.startswith("f:")]
    scorers = order_scorers([c for c in names if rows[c].notna().any()])
    return weekly_table(rows, scorers, weeks(start, last), options.top_k)


def _summary(
    history: History,
    the_plan: Plan,
    options: ReplayOptions,
    progress: ReplayProgress,
    maturity_s: float,
) -> dict[str, Any]:
    return {
        "replay": progress.name,
        "file": str(options.file),
        "rows_read": history.rows_read,
        "rows_refused": history.refused,
        "transactions_published": progress.transactions,
        "outcomes_published": progress.outcomes,
        "outcomes_not_due": the_plan.not_due,
        "frauds_in_file": int(history.frame["is_fraud"].sum()),
        "first_event": _iso(progress.first_ms),
        "last_event": _iso(progress.last_ms),
        "scored_from": _iso(the_plan.scored_start),
        "options": _options(options, maturity_s),
        "retrains": [vars(r) for r in progress.retrains],
    }


def _options(options: ReplayOptions, maturity_s: float) -> dict[str, Any]:
    def days(ms: int | None) -> float | None:
        return None if ms is None else ms / DAY_MS

    return {
        "map": options.mapping,
        "label_delay_days": None if options.outcome_time_column else days(options.label_delay_ms),
        "outcome_time_column": options.outcome_time_column,
        "legit_label_share": options.legit_share,
        "warmup_days": days(options.warmup_ms),
        "retrain_every_days": days(options.retrain_every_ms),
        "step_days": days(options.step_ms),
        "maturity_days": maturity_s / 86_400,
        "top_k": options.top_k,
        "seed": options.seed,
    }


def _write(out: Path, table: pd.DataFrame, summary: dict[str, Any]) -> dict[str, Path]:
    csv, js = out / "weekly.csv", out / "weekly.json"
    table.to_csv(csv, index=False, float_format="%.4f")
    js.write_text(json.dumps(_clean(summary), indent=2) + "\n")
    return {"csv": csv, "json": js}


def _clean(value: Any) -> Any:
    """JSON-safe: NaN as null, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _iso(ms: int) -> str:
    return utc(ms).strftime("%Y-%m-%dT%H:%M:%SZ")
