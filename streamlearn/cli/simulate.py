"""`streamlearn simulate`: the upstream systems, with progress bars for backfill and live."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from streamlearn.cli.common import Bootstrap, console, err_console, load_settings
from streamlearn.foundation.clock import DAY_MS
from streamlearn.foundation.kafka import check_reachable, ensure_topics
from streamlearn.tools.simulate import handbook
from streamlearn.tools.simulate.producer import SimulationReport, run


def simulate(
    rate: Annotated[float, typer.Option(min=0.1, help="Events per second (live mode).")] = 200.0,
    duration: Annotated[float | None, typer.Option(min=0, help="Seconds to run.")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Transactions to send.")] = None,
    fraud_rate: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.005,
    outcome_delay: Annotated[
        float | None, typer.Option(min=0, help="Seconds until outcomes are known (event time).")
    ] = None,
    drift_at: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Fraction of the run where fraud changes."),
    ] = None,
    backfill_days: Annotated[
        float, typer.Option(min=0, help="Generate this many days of history, fast.")
    ] = 0.0,
    seed: Annotated[int, typer.Option()] = 7,
    to_file: Annotated[
        Path | None,
        typer.Option(
            help="Write a history with the handbook's fraud patterns to this .csv or .parquet "
            "instead (for `streamlearn replay FILE --map handbook`); no Kafka.",
        ),
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Days of history (--to-file).")] = 60,
    customers: Annotated[int, typer.Option(min=1, help="Customers (--to-file).")] = 5000,
    terminals: Annotated[int, typer.Option(min=1, help="Terminals (--to-file).")] = 10000,
    bootstrap: Bootstrap = None,
) -> None:
    """Produce realistic transactions and their outcomes (the upstream systems)."""
    if to_file is not None:
        config = handbook.HandbookConfig(
            customers=customers, terminals=terminals, days=days, seed=seed
        )
        frame = handbook.generate(config)
        console.print(f"{handbook.write(frame, to_file)}: {handbook.describe(frame)}")
        return
    settings = load_settings(bootstrap)
    check_reachable(settings)
    ensure_topics(settings)
    with SimulateProgress() as progress:
        report = run(
            settings,
            rate=rate,
            duration_s=duration,
            count=count,
            fraud_rate=fraud_rate,
            outcome_delay_s=outcome_delay,
            drift_at=drift_at,
            backfill_days=backfill_days,
            seed=seed,
            on_progress=progress.update,
        )
    console.print(summary(report))


def summary(report: SimulationReport) -> str:
    drift = f", drift from event {report.drift_at_event:,}" if report.drift_at_event else ""
    return (
        f"sent {report.transactions:,} transactions ({report.frauds:,} fraud) and "
        f"{report.outcomes:,} outcomes in {report.elapsed_s:.1f}s ({report.rate:,.0f}/s)"
        f"{drift}; {report.outcomes_pending:,} outcomes not yet due"
    )


def counts(report: SimulationReport) -> str:
    return (
        f"{report.transactions:,} sent · {report.frauds:,} fraud · "
        f"{report.outcomes:,} outcomes · {report.rate:,.0f}/s"
    )


class SimulateProgress:
    """Bars on stderr (only on a terminal): the backfill in days of event time, the live phase
    in transactions (--count) or seconds (--duration), else a running count."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[counts]}"),
            console=err_console,
            disable=not err_console.is_terminal,
        )
        self.backfill: TaskID | None = None
        self.live: TaskID | None = None

    def __enter__(self) -> SimulateProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def update(self, report: SimulationReport) -> None:
        """SimulationReport snapshots from the producer (every 0.5 s and at the end)."""
        if report.backfill_window is not None:
            self._backfill(report, *report.backfill_window)
        if report.live_start_ms is not None and report.phase != "backfill":
            self._live(report, report.live_start_ms)

    def _backfill(self, report: SimulationReport, start_ms: int, end_ms: int) -> None:
        days = (end_ms - start_ms) / DAY_MS
        if self.backfill is None:
            self.backfill = self.bar.add_task("backfill", total=days, counts="")
        reached = end_ms if report.phase != "backfill" else report.last_event_ms or start_ms
        self.bar.update(
            self.backfill,
            completed=max(0.0, (reached - start_ms) / DAY_MS),
            counts=f"{counts(report)} (days of event time)",
        )

    def _live(self, report: SimulationReport, start_ms: int) -> None:
        sent = report.transactions - report.backfill_transactions
        if report.live_count is not None:
            total: float | None = report.live_count
            completed: float = sent
        elif report.live_until_ms is not None:
            total = (report.live_until_ms - start_ms) / 1000
            completed = min(total, time.time() - start_ms / 1000)
        else:  # until Ctrl-C: a count, no end
            total, completed = None, sent
        if report.phase == "done" and not report.interrupted and total is not None:
            completed = total
        if self.live is None:
            self.live = self.bar.add_task("live", total=total, counts="")
        self.bar.update(self.live, total=total, completed=completed, counts=counts(report))
