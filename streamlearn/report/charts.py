"""The report's charts: pure functions from query results (DataFrames) to a `Chart` (PNG bytes).

None of them raises on empty or column-less frames: the Chart says what is missing instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from . import plotting as p
from .charts_ops import cost_chart, dead_letters_chart, lifecycle_chart, throughput_chart
from .plotting import Chart

__all__ = [
    "Chart",
    "cost_chart",
    "data_drift_chart",
    "dead_letters_chart",
    "lifecycle_chart",
    "online_metrics_chart",
    "roc_pr_chart",
    "score_distribution_chart",
    "throughput_chart",
]

MAX_SCORERS = 8
MAX_VERSIONS = 6
MAX_FEATURES = 8


# -- 1. online metrics --------------------------------------------------------------------
ONLINE_TITLE = "Online ranking quality per scorer"
ONLINE_CAPTION = (
    "Rolling ROC AUC, average precision and precision among each day's top alerts per scorer, "
    "from streamlearn.online_metrics (label-weighted over workers); vertical lines: drift "
    "events (streamlearn.drift_events) and model swaps (served model_version changes in "
    "streamlearn.transactions)."
)
ONLINE_PANELS = (
    ("auc_rolling", "ROC AUC"),
    ("ap_rolling", "average precision"),
    ("p_at_k_day_rolling", "precision@k/day"),
)


def online_metrics_chart(
    metrics: pd.DataFrame | None, drift: pd.DataFrame | None, served: pd.DataFrame | None
) -> Chart:
    spec = p.ChartSpec("online-metrics", ONLINE_TITLE, ONLINE_CAPTION)
    if not p.has_rows(metrics, "minute", "scorer", *(c for c, _ in ONLINE_PANELS)):
        return spec.missing(
            "no rows in streamlearn.online_metrics in this window "
            "(a worker writes one per scorer a minute once outcomes are learned)",
        )
    frame = metrics.assign(minute=p.utc_naive(metrics["minute"]))
    fig, axes = p.figure(rows=3, height=8.5)
    scorers = sorted(frame["scorer"].astype(str).unique())[:MAX_SCORERS]
    for ax, (column, label) in zip(axes, ONLINE_PANELS, strict=True):
        for i, scorer in enumerate(scorers):
            rows = frame[frame["scorer"].astype(str) == scorer]
            values = pd.to_numeric(rows[column], errors="coerce")
            ax.plot(rows["minute"], values, label=scorer, color=p.colour(i))
        ax.set_ylabel(label)
    lo, hi = frame["minute"].min(), frame["minute"].max()
    notes = _mark_drift_and_swaps(axes, drift, served, lo, hi)
    p.legend_above(fig, axes[0], ncols=min(len(scorers), 8))
    axes[0].set_title(notes, fontsize=9, loc="left")
    p.time_axis(axes[-1])
    return spec.drawn(fig)


def _mark_drift_and_swaps(axes, drift, served, lo, hi) -> str:
    """Drift events and model swaps inside [lo, hi] as vertical lines; a one-line key to them."""
    parts = []
    if p.has_rows(drift, "time", "kind"):
        times = p.utc_naive(drift["time"])
        for kind, (colour, style, name) in p.DRIFT_STYLES.items():
            n = p.mark_times(
                axes, p.within(times[drift["kind"].values == kind], lo, hi), colour, style
            )
            if n:
                parts.append(f"{n} {kind} drift ({name})")
    changes = [(t, v) for t, v in p.swaps(served) if lo <= t <= hi]
    p.mark_times(axes, (t for t, _ in changes), "black", "--")
    for t, version in changes:
        axes[0].annotate(
            p.short(version, 16),
            (t, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
        )
    parts.append(f"{len(changes)} model swap(s) (black dashed)")
    return "; ".join(parts)


NO_LABELLED = (
    "no labelled transactions in this window "
    "(streamlearn.transactions joined with streamlearn.outcomes is empty)"
)


# -- 2. ROC and precision-recall per model version -----------------------------------------
CURVES_TITLE = "ROC and precision-recall per model version"
CURVES_CAPTION = (
    "Each model version's own score (lightgbm_score, else the served score) on the labelled "
    "transactions it scored: streamlearn.transactions joined with the latest outcome "
    "(streamlearn.labels over streamlearn.outcomes)."
)


def roc_pr_chart(labelled: pd.DataFrame | None) -> Chart:
    spec = p.ChartSpec("roc-pr", CURVES_TITLE, CURVES_CAPTION)
    if not p.has_rows(labelled, "model_version", "model_score", "is_fraud"):
        return spec.missing(NO_LABELLED)
    frame = labelled.dropna(subset=["is_fraud"])
    frame = frame.assign(y=frame["is_fraud"].astype(bool))
    by_version = frame.groupby(frame["model_version"].astype(str))
    usable = [v for v, g in by_version if g["y"].nunique() == 2]
    skipped = sorted(set(by_version.groups) - set(usable))
    if not usable:
        return spec.missing(
            "every version's labelled transactions are of "
            f"one class only (versions {', '.join(skipped)}): no curve is defined",
        )
    usable = sorted(usable, key=lambda v: -len(by_version.get_group(v)))[:MAX_VERSIONS]
    fig, (roc_ax, pr_ax) = p.figure(cols=2, height=4.6, sharex=False)
    for i, version in enumerate(usable):
        g = by_version.get_group(version)
        y, s = g["y"].to_numpy(), pd.to_numeric(g["model_score"], errors="coerce").fillna(0)
        fpr, tpr, _ = roc_curve(y, s)
        prec, rec, _ = precision_recall_curve(y, s)
        colour, name = p.colour(i), p.short(version)
        roc_ax.plot(fpr, tpr, color=colour, label=f"{name} AUC {auc(fpr, tpr):.3f} n={len(g)}")
        ap = average_precision_score(y, s)
        pr_ax.plot(rec, prec, color=colour, label=f"{name} AP {ap:.3f} ({int(y.sum())} fraud)")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall")
    for ax in (roc_ax, pr_ax):
        ax.legend(fontsize=7, loc="lower right" if ax is roc_ax else "lower left")
    note = f"one class only, no curve: {', '.join(skipped)}" if skipped else None
    return spec.drawn(fig, note)


# -- 3. score distributions by outcome -----------------------------------------------------
SCORES_TITLE = "Served score by outcome"
SCORES_CAPTION = (
    "Distribution of the served score for transactions whose latest outcome is fraud vs "
    "legit (density, log scale): streamlearn.transactions joined with streamlearn.labels."
)


def score_distribution_chart(labelled: pd.DataFrame | None) -> Chart:
    spec = p.ChartSpec("score-distribution", SCORES_TITLE, SCORES_CAPTION)
    if not p.has_rows(labelled, "score", "is_fraud"):
        return spec.missing(NO_LABELLED)
    known = labelled.dropna(subset=["is_fraud"])
    fraud = known["is_fraud"].astype(bool).to_numpy()
    scores = pd.to_numeric(known["score"], errors="coerce").to_numpy(dtype=float)
    fig, (ax,) = p.figure(height=4.0)
    bins = np.linspace(0.0, 1.0, 51)
    absent = []
    for mask, name, colour in ((~fraud, "legit", p.PALETTE[0]), (fraud, "fraud", p.PALETTE[3])):
        values = scores[mask & np.isfinite(scores)]
        if len(values) == 0:
            absent.append(name)
            continue
        ax.hist(
            np.clip(values, 0, 1),
            bins=bins.tolist(),
            density=True,
            alpha=0.55,
            color=colour,
            label=f"{name} (n={len(values):,}, median {np.median(values):.3f})",
        )
    if len(absent) == 2:
        return spec.missing("no labelled transaction has a finite score")
    ax.set_yscale("log")
    ax.set(xlabel="served score", ylabel="density")
    ax.legend(fontsize=8)
    note = f"no {absent[0]} outcomes in this window" if absent else None
    return spec.drawn(fig, note)


# -- 4. data drift per feature -------------------------------------------------------------
DRIFT_TITLE = "Data drift per feature (PSI at detection)"
DRIFT_CAPTION = (
    "PSI of each feature against the served champion's training bins when it crossed the "
    "threshold, over time, top features by PSI named: streamlearn.drift_events, kind 'data'."
)
DRIFT_GAP = (
    "only detections are stored: PSI below the threshold (the continuous series, /status "
    "drift_psi) is not recorded in ClickHouse"
)


def data_drift_chart(drift: pd.DataFrame | None) -> Chart:
    spec = p.ChartSpec("data-drift", DRIFT_TITLE, DRIFT_CAPTION)
    if not p.has_rows(drift, "time", "feature", "psi"):
        return spec.missing(
            "no data drift events in this window "
            f"(streamlearn.drift_events, kind 'data'); {DRIFT_GAP}",
        )
    frame = drift.assign(time=p.utc_naive(drift["time"]), feature=drift["feature"].astype(str))
    frame = frame.assign(psi=pd.to_numeric(frame["psi"], errors="coerce"))
    frame = frame[np.isfinite(frame["psi"])]
    if frame.empty:
        return spec.missing(f"no finite PSI in this window; {DRIFT_GAP}")
    fig, (ax,) = p.figure(height=4.5)
    _plot_psi(ax, frame, p.top_by(frame, "feature", "psi", MAX_FEATURES))
    p.legend_above(fig, ax, ncols=3)
    p.time_axis(ax)
    return spec.drawn(fig, DRIFT_GAP)


def _plot_psi(ax, frame: pd.DataFrame, top: list) -> None:
    """The top features as coloured lines, the rest as grey points, the threshold dashed."""
    rest = frame[~frame["feature"].isin(top)]
    if len(rest):
        label = f"{rest['feature'].nunique()} other features"
        ax.scatter(rest["time"], rest["psi"], s=8, color="lightgrey", label=label)
    for i, feature in enumerate(top):
        rows = frame[frame["feature"] == feature]
        ax.plot(
            rows["time"],
            rows["psi"],
            marker="o",
            markersize=4,
            linewidth=1,
            color=p.colour(i),
            label=f"{feature} (max {rows['psi'].max():.2f})",
        )
    thresholds: Any = p.finite(frame["threshold"]) if "threshold" in frame.columns else []
    if len(thresholds):
        ax.axhline(float(np.median(thresholds)), color="grey", linestyle="--", label="threshold")
    if (frame["psi"] > 0).all():
        ax.set_yscale("log")
    ax.set_ylabel("PSI")
