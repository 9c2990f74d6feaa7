"""What the charts share: the Chart record, Agg figures to PNG bytes, UTC time axes, markers.

Figures are built with the object API on an Agg canvas (no pyplot state, no display, safe in
a worker thread).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

WIDTH_IN = 11.0
DPI = 100
# Colour-blind-safe cycle (Okabe-Ito), so scorers and versions stay apart in print too.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
# Drift markers: colours outside PALETTE and line styles of their own, so a marker is never
# taken for a scorer's line.
DRIFT_STYLES = {
    "data": ("#888888", ":", "grey dotted"),
    "score": ("#882255", "-.", "wine dash-dot"),
    "concept": ("#AA0000", "-", "dark red"),
}


@dataclass(frozen=True)
class Chart:
    """One chart: a PNG, or why there is none. `missing` may also accompany a PNG when part of
    what the chart should show is not recorded."""

    slug: str
    title: str
    caption: str
    png: bytes | None = None
    missing: str | None = None


@dataclass(frozen=True)
class ChartSpec:
    """What a chart is (slug, title, caption): the Chart it draws, or why it cannot."""

    slug: str
    title: str
    caption: str

    def missing(self, why: str) -> Chart:
        """The chart could not be drawn, and why (what data it lacks)."""
        return Chart(self.slug, self.title, self.caption, None, why)

    def drawn(self, fig: Figure, note: str | None = None) -> Chart:
        """The chart as a PNG, with a note on what it cannot show, if any."""
        return Chart(self.slug, self.title, self.caption, to_png(fig), note)


def colour(i: int) -> str:
    """The i-th line's colour, cycling through PALETTE."""
    return PALETTE[i % len(PALETTE)]


def has_rows(df: pd.DataFrame | None, *columns: str) -> TypeGuard[pd.DataFrame]:
    """Rows, with the columns a chart needs (an empty result may come back column-less)."""
    return df is not None and not df.empty and all(c in df.columns for c in columns)


def figure(
    rows: int = 1, cols: int = 1, height: float = 4.0, sharex: bool = True
) -> tuple[Figure, list[Axes]]:
    """A figure on its own Agg canvas and its axes, row by row."""
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(rows, cols, sharex=sharex, squeeze=False).ravel())
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def legend_above(fig: Figure, ax: Axes, ncols: int = 4, **kwargs: Any) -> None:
    """The axis' legend above the plot, where it never hides data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncols=ncols, fontsize=8, **kwargs)


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def utc_naive(values: Any) -> pd.Series:
    """Timestamps as naive UTC: chdb returns naive UTC, a server may return tz-aware."""
    series = pd.to_datetime(pd.Series(values), utc=True, errors="coerce")
    return series.dt.tz_localize(None)


def time_axis(ax: Axes) -> None:
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlabel("time (UTC)")


def short(version: Any, width: int = 22) -> str:
    text = str(version)
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def clip(text: Any, width: int) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def swaps(served: pd.DataFrame | None) -> list[tuple[pd.Timestamp, str]]:
    """(minute, new version) wherever the version serving most of a minute changed."""
    if not has_rows(served, "minute", "model_version"):
        return []
    frame = served.assign(minute=utc_naive(served["minute"])).sort_values("minute")
    versions = frame["model_version"].astype(str)
    changed = versions.ne(versions.shift())
    changed.iloc[0] = False  # the first minute in the window is where it starts, not a swap
    return list(zip(frame["minute"][changed], versions[changed], strict=True))


def mark_times(
    axes: Sequence[Axes], times: Iterable[pd.Timestamp], colour: str, style: str = "-"
) -> int:
    """Vertical lines at `times` on every axis; returns how many were drawn."""
    drawn = 0
    for t in times:
        for ax in axes:
            ax.axvline(t, color=colour, linestyle=style, linewidth=0.9, alpha=0.55)
        drawn += 1
    return drawn


def within(times: pd.Series, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.Series:
    """Only markers inside the data's own span, so they never stretch the time axis."""
    return times[(times >= lo) & (times <= hi)]


def top_by(df: pd.DataFrame, key: str, value: str, n: int) -> list[Any]:
    """The n keys with the largest `value` (max over their rows), largest first."""
    return list(df.groupby(key)[value].max().sort_values(ascending=False).index[:n])


def bucket_rule(times: pd.Series, max_buckets: int = 60) -> str:
    """A pandas frequency giving at most ~max_buckets bars over the span of `times`."""
    span_min = max(1.0, (times.max() - times.min()).total_seconds() / 60.0)
    for minutes, rule in ((1, "1min"), (5, "5min"), (15, "15min"), (60, "1h"), (360, "6h")):
        if span_min / minutes <= max_buckets:
            return rule
    return "1D"


def finite(values: Any) -> np.ndarray:
    arr = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    return arr[np.isfinite(arr)]
