"""The replay's chart: per event week, each scorer's ranking quality on the file's labels, with
the offline reference beside what was served (their gap is the streaming loss)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from . import plotting as p
from .plotting import Chart

TITLE = "Backtest: quality per event week and scorer"
CAPTION = (
    "ROC AUC, average precision and precision among each day's top k per event week of the "
    "replay's scored window, of the scores served at event time (streamlearn.transactions) "
    "against the replayed file's labels; dashed black: the offline reference, a LightGBM the "
    "retrain code trained on every matured row at each retrain point. The gap between the "
    "reference and `served` is the streaming loss."
)
PANELS = (("auc", "ROC AUC"), ("ap", "average precision"), ("p_at_k", "precision@k/day"))
REFERENCE, SERVED = "reference", "served"


def backtest_chart(weekly: pd.DataFrame | None) -> Chart:
    """weekly: the replay's table (week_start_ms, week, scorer, auc, ap, p_at_k); the "all"
    rows (the whole window) are left out of the lines."""
    spec = p.ChartSpec("backtest-weekly", TITLE, CAPTION)
    if not p.has_rows(weekly, "week", "week_start_ms", "scorer", *(c for c, _ in PANELS)):
        return spec.missing("no scored weeks in this replay")
    frame = weekly[weekly["week"] != "all"].copy()
    if frame.empty:
        return spec.missing("no scored weeks in this replay")
    frame["start"] = pd.to_datetime(frame["week_start_ms"], unit="ms")
    fig, axes = p.figure(rows=3, height=8.5)
    scorers = list(dict.fromkeys(frame["scorer"].astype(str)))
    colours = iter(p.PALETTE * 3)
    for scorer in scorers:
        rows = frame[frame["scorer"] == scorer].sort_values("start")
        style: dict[str, Any] = {"color": next(colours), "linestyle": "-", "linewidth": 1.4}
        if scorer == REFERENCE:
            style = {"color": "black", "linestyle": "--", "linewidth": 2.0}
        elif scorer == SERVED:  # wide and pale: the component it serves stays visible on it
            style |= {"linewidth": 6.0, "alpha": 0.35, "zorder": 1}
        for ax, (column, _) in zip(axes, PANELS, strict=True):
            values = pd.to_numeric(rows[column], errors="coerce")
            ax.plot(rows["start"], values, marker="o", label=scorer, **style)
    for ax, (_, label) in zip(axes, PANELS, strict=True):
        ax.set_ylabel(label)
    p.legend_above(fig, axes[0], ncols=min(len(scorers), 8))
    starts = sorted(frame["start"].unique())
    axes[-1].set_xticks(starts, [f"{pd.Timestamp(t):%Y-%m-%d}" for t in starts], fontsize=8)
    axes[-1].set_xlabel("event week (start, UTC)")
    return spec.drawn(fig)
