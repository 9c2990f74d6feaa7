"""The report's operational charts (lifecycle, cost, dead letters, throughput): pure functions
from query results to a `Chart`; empty or column-less frames give a Chart saying what is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import plotting as p
from .plotting import Chart

MAX_MODELS = 30
MAX_VERSIONS = 8
MAX_REASONS = 6
STATUS_COLOURS = {
    "candidate": "#999999",
    "shadow": "#CC79A7",
    "champion": "#009E73",
    "retired": "#0072B2",
    "rejected": "#D55E00",
}
ENDED = ("retired", "rejected")

# -- 5. model lifecycle --------------------------------------------------------------------
LIFECYCLE_TITLE = "Model lifecycle"
LIFECYCLE_CAPTION = (
    "Each model version from registration (circle) to its latest status change (diamond), "
    "coloured by its current status with the gate's decision or reason, from streamlearn.models; "
    "the thick bar is when it served traffic (model_version in streamlearn.transactions)."
)
LIFECYCLE_GAP = (
    "streamlearn.models keeps each version's latest status only (ReplacingMergeTree): "
    "earlier statuses and when they changed are not recorded"
)


def lifecycle_chart(models: pd.DataFrame | None) -> Chart:
    spec = p.ChartSpec("model-lifecycle", LIFECYCLE_TITLE, LIFECYCLE_CAPTION)
    if not p.has_rows(models, "version", "status", "created_at", "updated_at"):
        return spec.missing(
            "no model versions in streamlearn.models in this "
            "window (`streamlearn retrain` registers every run)",
        )
    frame = models.copy()
    for column in ("created_at", "updated_at", "first_served", "last_served"):
        frame[column] = p.utc_naive(frame[column]) if column in frame else pd.NaT
    frame = frame.sort_values(["created_at", "version"]).tail(MAX_MODELS).reset_index(drop=True)
    times = pd.concat([frame[c] for c in ("created_at", "updated_at", "last_served")])
    now = times.max()
    fig, (ax,) = p.figure(height=1.6 + 0.45 * len(frame))
    for y, row in frame.iterrows():
        _draw_version(ax, int(y), row, now)
    ax.set_yticks(range(len(frame)), [p.short(v, 28) for v in frame["version"]], fontsize=7)
    ax.set_ylim(len(frame) - 0.4, -0.8)
    handles: list[Artist] = [Patch(color=c, label=s) for s, c in STATUS_COLOURS.items()]
    handles.append(Line2D([], [], color="black", linewidth=6, label="served (transactions)"))
    fig.legend(handles=handles, fontsize=8, loc="outside upper center", ncols=len(handles))
    p.time_axis(ax)
    return spec.drawn(fig, LIFECYCLE_GAP)


def _draw_version(ax, y: int, row: pd.Series, now: pd.Timestamp) -> None:
    status = str(row["status"])
    colour = STATUS_COLOURS.get(status, "black")
    end = row["updated_at"] if status in ENDED else now
    ax.hlines(y, row["created_at"], end, color=colour, linewidth=2, alpha=0.6)
    if pd.notna(row["first_served"]) and pd.notna(row["last_served"]):
        ax.hlines(y, row["first_served"], row["last_served"], color=colour, linewidth=7)
    ax.plot(row["created_at"], y, "o", color=colour, markerfacecolor="white", markersize=6)
    ax.plot(row["updated_at"], y, "D", color=colour, markersize=5)
    gate = row.get("live_decision") or row.get("decision")
    why = "; ".join(str(x) for x in (row.get("reason"), f"gate: {gate}" if gate else "") if x)
    ax.annotate(
        p.clip(f"{status}: {why}" if why else status, 130),
        (row["created_at"], y),
        xytext=(0, 6),
        textcoords="offset points",
        fontsize=7,
        va="bottom",
        clip_on=True,
    )


# -- 6. inference vs training CPU ----------------------------------------------------------
COST_TITLE = "Inference CPU against training CPU per model"
COST_CAPTION = (
    "Cumulative CPU seconds spent scoring with each version (streamlearn.model_usage) against "
    "the CPU seconds its training took (dashed, streamlearn.models train_cpu_s); a star marks "
    "the minute inference passed training."
)


def cost_chart(usage: pd.DataFrame | None) -> Chart:
    spec = p.ChartSpec("inference-cost", COST_TITLE, COST_CAPTION)
    if not p.has_rows(usage, "version", "minute", "cum_cpu_s"):
        return spec.missing(
            "no rows in streamlearn.model_usage in this "
            "window (a worker writes scoring CPU per version every minute)",
        )
    frame = usage.assign(minute=p.utc_naive(usage["minute"]), version=usage["version"].astype(str))
    fig, (ax,) = p.figure(height=4.5)
    untrained = []
    for i, version in enumerate(p.top_by(frame, "version", "cum_cpu_s", MAX_VERSIONS)):
        rows = frame[frame["version"] == version].sort_values("minute")
        colour = p.colour(i)
        # A marker per minute: a version that served within one minute is a point, not a line.
        ax.plot(rows["minute"], rows["cum_cpu_s"], color=colour, marker=".", label=p.short(version))
        train = p.finite(rows["train_cpu_s"]) if "train_cpu_s" in rows else np.array([])
        if not len(train):
            untrained.append(version)
            continue
        ax.axhline(train[0], color=colour, linestyle="--", linewidth=1)
        passed = rows[rows["cum_cpu_s"] >= train[0]]
        if len(passed):
            first = passed.iloc[0]
            ax.plot(first["minute"], first["cum_cpu_s"], "*", color=colour, markersize=14)
            ax.annotate(
                "inference passed training",
                (first["minute"], first["cum_cpu_s"]),
                xytext=(6, -10),
                textcoords="offset points",
                fontsize=7,
                color=colour,
            )
    if (frame["cum_cpu_s"] > 0).all():
        ax.set_yscale("log")
    ax.set_ylabel("CPU seconds (cumulative)")
    p.legend_above(fig, ax, title="version: cumulative inference (dashed: its training CPU)")
    p.time_axis(ax)
    note = (
        f"no training CPU in streamlearn.models for {', '.join(untrained)}" if untrained else None
    )
    return spec.drawn(fig, note)


# -- 7. dead letters -----------------------------------------------------------------------
LETTERS_TITLE = "Dead letters by reason"
LETTERS_CAPTION = (
    "Messages refused by the worker per time bucket, stacked by stage and the error's first "
    "phrase, from streamlearn.dead_letters."
)


def dead_letters_chart(letters: pd.DataFrame | None) -> Chart:
    spec = p.ChartSpec("dead-letters", LETTERS_TITLE, LETTERS_CAPTION)
    if not p.has_rows(letters, "minute", "reason", "letters"):
        return spec.missing(
            "no rows in streamlearn.dead_letters in this "
            "window (the worker sends dead letters to the dead-letters topic and "
            "counts them by stage on /status; nothing writes this table yet)",
        )
    frame = letters.assign(
        minute=p.utc_naive(letters["minute"]), reason=letters["reason"].astype(str)
    )
    totals = frame.groupby("reason")["letters"].sum().sort_values(ascending=False)
    keep = set(totals.index[:MAX_REASONS])
    frame["reason"] = frame["reason"].where(frame["reason"].isin(keep), "other")
    rule = p.bucket_rule(frame["minute"])
    table = (
        frame.groupby([pd.Grouper(key="minute", freq=rule), "reason"])["letters"]
        .sum()
        .unstack(fill_value=0)
    )
    fig, (ax,) = p.figure(height=4.2)
    width = pd.Timedelta(rule).total_seconds() / 86400 * 0.85
    bottom = np.zeros(len(table))
    for i, reason in enumerate(table.columns):
        values = table[reason].to_numpy(dtype=float)
        ax.bar(
            table.index,
            values,
            width=width,
            bottom=bottom,
            align="edge",
            color=p.colour(i),
            label=f"{p.clip(reason, 60)} ({int(values.sum()):,})",
        )
        bottom += values
    ax.set_ylabel(f"dead letters per {rule}")
    p.legend_above(fig, ax, ncols=2)
    p.time_axis(ax)
    return spec.drawn(fig)


# -- 8. throughput and latency -------------------------------------------------------------
THROUGHPUT_TITLE = "Throughput and event-to-score lag"
THROUGHPUT_CAPTION = (
    "Transactions scored per minute, and the p50/p99 lag from event time to scoring "
    "(scored_at - event_time), from streamlearn.transactions."
)
LATENCY_GAP = (
    "processing latency (Kafka publish to score, the p50/p99 on /status) is not stored in "
    "ClickHouse: the lag shown includes upstream delay and replayed history"
)


def throughput_chart(throughput: pd.DataFrame | None) -> Chart:
    spec = p.ChartSpec("throughput", THROUGHPUT_TITLE, THROUGHPUT_CAPTION)
    if not p.has_rows(throughput, "minute", "transactions"):
        return spec.missing(
            "no scored transactions in this window "
            "(streamlearn.transactions); besides, processing latency (Kafka publish "
            "to score, the p50/p99 on /status) is not stored in ClickHouse",
        )
    frame = throughput.assign(minute=p.utc_naive(throughput["minute"])).sort_values("minute")
    fig, (rate_ax, lag_ax) = p.figure(rows=2, height=6.0)
    rate_ax.step(frame["minute"], frame["transactions"], where="post", color=p.PALETTE[0])
    rate_ax.set_ylabel("transactions / minute")
    rate_ax.set_ylim(bottom=0)
    lags = [c for c in ("lag_p50_ms", "lag_p99_ms") if c in frame.columns]
    for i, column in enumerate(lags):
        seconds = pd.to_numeric(frame[column], errors="coerce") / 1000.0
        lag_ax.plot(
            frame["minute"],
            seconds.clip(lower=1e-3),
            color=p.PALETTE[i + 2],
            label=column.replace("lag_", "").replace("_ms", ""),
        )
    lag_ax.set_yscale("log")
    lag_ax.set_ylabel("event time to scored (s)")
    if lags:
        lag_ax.legend(fontsize=8, loc="upper left")
    p.time_axis(lag_ax)
    return spec.drawn(fig, LATENCY_GAP)
