"""`build_report`: run every report query through the caller's query function, draw each chart,
and write the HTML page and PNGs. A failing query costs only the charts that need it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import charts, queries
from .html import render_html, write_report
from .plotting import Chart

log = logging.getLogger(__name__)
QueryDF = Callable[[str, dict[str, Any]], pd.DataFrame]


@dataclass(frozen=True)
class ChartSpec:
    """A chart function and the queries it takes, in argument order; an `optional` query that
    fails is passed as an empty frame (the chart is drawn without it, and says so)."""

    draw: Callable[..., Chart]
    queries: tuple[str, ...]
    optional: tuple[str, ...] = ()


SPECS: tuple[ChartSpec, ...] = (
    ChartSpec(
        charts.online_metrics_chart,
        ("online_metrics", "drift_events", "served_versions"),
        optional=("drift_events", "served_versions"),
    ),
    ChartSpec(charts.roc_pr_chart, ("labelled_scores",)),
    ChartSpec(charts.score_distribution_chart, ("labelled_scores",)),
    ChartSpec(charts.data_drift_chart, ("data_drift",)),
    ChartSpec(charts.lifecycle_chart, ("models",)),
    ChartSpec(charts.cost_chart, ("inference_cost",)),
    ChartSpec(charts.dead_letters_chart, ("dead_letters",)),
    ChartSpec(charts.throughput_chart, ("throughput",)),
)


def build_report(
    query_df: QueryDF,
    out_dir: Path,
    since: dt.datetime | None,
    source_label: str,
    extra: Sequence[Chart] = (),
) -> Path:
    """Write out_dir/report.html (self-contained) and out_dir/<slug>.png per chart.

    `query_df(sql, parameters)` runs one read-only query (Store.query_df, RemoteStore.query_df
    or a server client); `source_label` is shown as is, so pass a redacted URL
    (streamlearn.foundation.store.redact_url); `extra` charts (a replay's) come first.
    Returns the HTML path.
    """
    charts, header = _charts(query_df, since, source_label)
    return write_report([*extra, *charts], Path(out_dir), **header)


def report_html(query_df: QueryDF, since: dt.datetime | None, source_label: str) -> str:
    """The same page as build_report, as text, with nothing written (the worker's live view)."""
    charts, header = _charts(query_df, since, source_label)
    return render_html(charts, **header)


def _charts(
    query_df: QueryDF, since: dt.datetime | None, source_label: str
) -> tuple[list[Chart], dict[str, str]]:
    """Every chart, and the page header's fields."""
    generated = dt.datetime.now(dt.UTC)
    results, errors = run_queries(query_df, queries.parameters(since))
    drawn = [draw_chart(spec, results, errors) for spec in SPECS]
    header = {
        "source_label": source_label,
        "time_range": describe_range(since, generated),
        "data_summary": describe_data(results.get("range"), errors.get("range")),
    }
    return drawn, header


def run_queries(
    query_df: QueryDF, params: dict[str, Any]
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Every query once: its frame, or its error as one line (never raised)."""
    results: dict[str, pd.DataFrame] = {}
    errors: dict[str, str] = {}
    for name, sql in queries.QUERIES.items():
        try:
            frame = query_df(sql, queries.used_parameters(sql, params))
            results[name] = frame if frame is not None else pd.DataFrame()
        except Exception as exc:  # one broken query must not cost the whole report
            log.warning("report query %s failed: %s", name, _one_line(exc))
            errors[name] = _one_line(exc)
    return results, errors


def draw_chart(spec: ChartSpec, results: dict[str, pd.DataFrame], errors: dict[str, str]) -> Chart:
    """The chart, or a Chart whose `missing` names the query (or drawing) that failed."""
    failed = [n for n in spec.queries if n in errors]
    fatal = [n for n in failed if n not in spec.optional]
    if fatal:
        return _with_note(_blank(spec), _failures(fatal, errors), keep_png=False)
    frames = [results.get(n, pd.DataFrame()) for n in spec.queries]
    try:
        chart = spec.draw(*frames)
    except Exception as exc:  # the chart functions should not raise; the report still must not
        log.exception("report chart %s failed", spec.draw.__name__)
        return _with_note(_blank(spec), f"drawing failed: {_one_line(exc)}", keep_png=False)
    return _with_note(chart, _failures(failed, errors), keep_png=True) if failed else chart


def _blank(spec: ChartSpec) -> Chart:
    """Slug, title and caption of a chart, from drawing it with no data."""
    return spec.draw(*(pd.DataFrame() for _ in spec.queries))


def _with_note(chart: Chart, note: str, *, keep_png: bool) -> Chart:
    if not keep_png:
        return dataclasses.replace(chart, png=None, missing=note)
    combined = f"{note}; {chart.missing}" if chart.missing else note
    return dataclasses.replace(chart, missing=combined)


def _failures(names: Sequence[str], errors: dict[str, str]) -> str:
    return "; ".join(f"query {n} failed: {errors[n]}" for n in names)


def describe_range(since: dt.datetime | None, until: dt.datetime) -> str:
    end = f"{until:%Y-%m-%d %H:%M:%S} UTC (report time)"
    if since is None:
        return f"all history to {end}"
    start = since.replace(tzinfo=dt.UTC) if since.tzinfo is None else since.astimezone(dt.UTC)
    return f"{start:%Y-%m-%d %H:%M:%S} UTC to {end}"


def describe_data(frame: pd.DataFrame | None, error: str | None) -> str:
    """One line on the transactions in the window, from the `range` query."""
    if error:
        return f"unknown (query range failed: {error})"
    if frame is None or frame.empty or "transactions" not in frame.columns:
        return "no scored transactions in this window"
    row = frame.iloc[0]
    count = int(row["transactions"])
    if count == 0:
        return "no scored transactions in this window"
    first, last = (pd.Timestamp(row[c]) for c in ("first_scored", "last_scored"))
    return f"{count:,} transactions scored from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
