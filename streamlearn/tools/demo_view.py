"""The demo's screens: the live view while it runs and the summary table at the end (rich)."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console, Group
from rich.table import Table

console = Console()


def fmt(value: Any, digits: int = 3) -> str:
    """A figure as the screens print it: `-` for none/NaN, thousands separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def live_view(
    status: dict[str, Any],
    counts: Any,
    phase: str,
    elapsed: float,
    retrains: list,
    learned_before: int = 0,
) -> Group:
    """The live screen: progress figures above the online metrics table."""
    top = Table.grid(padding=(0, 2))
    lat = status.get("latency") or {}
    rows = [
        ("phase", phase),
        ("elapsed", f"{elapsed:.0f}s"),
        ("sent / scored", f"{counts.transactions:,} / {status.get('transactions', 0):,}"),
        ("events/s", fmt(status.get("events_per_s"), 0)),
        ("latency p50 / p99", f"{fmt(lat.get('p50_ms'), 0)} / {fmt(lat.get('p99_ms'), 0)} ms"),
        ("model", f"{status.get('model_version')} ({status.get('model_swaps', 0)} swaps)"),
        (
            "outcomes learned",
            f"{status.get('learned', 0) - learned_before:,} of {counts.outcomes:,} sent",
        ),
        ("dead letters", str(sum((status.get("dead_letters") or {}).values()))),
        ("retrains", ", ".join(retrains[-3:]) or "-"),
    ]
    for k, v in rows:
        top.add_row(f"[bold]{k}[/]", v)
    return Group(top, metrics_table(status))


def metrics_table(status: dict[str, Any]) -> Table:
    """The worker's online metrics per scorer, at label time."""
    t = Table(title="online metrics at label time (scores as served)")
    t.add_column("scorer", no_wrap=True)  # never cut to "river_…": the name is the point
    columns = ("labels", "frauds", "AUC (last 5k)", "AUC (all)", "AP (last 5k)")
    for col in (*columns, "p@k/day (7 days)", "log loss"):
        t.add_column(col)
    for name, m in (status.get("online_metrics") or {}).items():
        t.add_row(
            name.removeprefix("river_"),
            fmt(int(m.get("labels") or 0)),
            fmt(int(m.get("positives") or 0)),
            fmt(m.get("auc_rolling")),
            fmt(m.get("auc")),
            fmt(m.get("ap_rolling")),
            fmt(m.get("p_at_k_day_rolling")),
            fmt(m.get("logloss")),
        )
    return t


def summary(
    status: dict[str, Any], counts: Any, retrains: list[str], learned_before: int = 0
) -> None:
    """The table printed when the demo ends, and where to query the history."""
    t = Table(title="demo summary")
    t.add_column("figure")
    t.add_column("value")
    lat = status.get("latency") or {}
    for k, v in (
        ("transactions sent", f"{counts.transactions:,} ({counts.frauds:,} fraud)"),
        ("transactions scored", fmt(status.get("transactions"))),
        (
            "outcomes sent / learned",
            f"{counts.outcomes:,} / {fmt((status.get('learned') or 0) - learned_before)}",
        ),
        ("dead letters", fmt(sum((status.get("dead_letters") or {}).values()))),
        ("latency p50 / p99 (ms)", f"{fmt(lat.get('p50_ms'), 0)} / {fmt(lat.get('p99_ms'), 0)}"),
        ("model serving at the end", fmt(status.get("model_version"))),
        ("retrains", "\n".join(retrains) or "-"),
    ):
        t.add_row(k, v)
    console.print(t)
    if status.get("online_metrics"):
        console.print(metrics_table(status))
    console.print(
        "Query the history: streamlearn query "
        '"SELECT model_version, count() FROM streamlearn.transactions GROUP BY 1"'
    )
