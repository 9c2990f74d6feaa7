"""`streamlearn bench`: the product's figures in one run (a real champion served, throughput
beside raw consume and bare Faust, latency, the sustainable rate, mixed load, a backlog)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamlearn.cli.common import console, load_settings
from streamlearn.tools.bench.options import Options
from streamlearn.tools.bench.run import run_bench
from streamlearn.tools.bench_training import render, run_training_bench

# The verb's options, one alias each, so its signature reads as a list of flags.
EventsOpt = Annotated[
    int | None, typer.Option(min=1000, help="Preloaded events of the throughput rows.")
]
LatencyRateOpt = Annotated[
    float | None, typer.Option(min=10, help="Events/s of the latency, mixed, backlog runs.")
]
LatencySOpt = Annotated[float | None, typer.Option(min=5, help="Latency run (s).")]
ProbeSOpt = Annotated[
    float | None, typer.Option(min=3, help="Each probe of the sustainable-rate search (s).")
]
ConfirmSOpt = Annotated[
    float | None, typer.Option(min=5, help="Confirmation of the sustainable rate (s).")
]
MixedSOpt = Annotated[float | None, typer.Option(min=5, help="Mixed-load run (s).")]
OutcomeRateOpt = Annotated[float | None, typer.Option(min=1, help="Outcomes/s in the mixed run.")]
BacklogOpt = Annotated[int | None, typer.Option(min=100, help="Outcomes put on the topic at once.")]
QuickOpt = Annotated[bool, typer.Option("--quick", help="A ~3-minute smoke: every phase, shorter.")]
JsonFileOpt = Annotated[
    Path | None, typer.Option("--json", help="Write every figure to this JSON file.")
]
TrainingOpt = Annotated[
    int | None,
    typer.Option(
        min=1000,
        help="Instead: time building the training set and training on this many labeled "
        "rows (streamlearn/tools/bench_training.py).",
    ),
]
PendingEntriesOpt = Annotated[
    str | None,
    typer.Option(help="Pending-map sizes whose memory to measure (comma list; '' skips)."),
]


def bench(
    events: EventsOpt = None,
    latency_rate: LatencyRateOpt = None,
    latency_s: LatencySOpt = None,
    probe_s: ProbeSOpt = None,
    confirm_s: ConfirmSOpt = None,
    mixed_s: MixedSOpt = None,
    outcome_rate: OutcomeRateOpt = None,
    backlog: BacklogOpt = None,
    quick: QuickOpt = False,
    json_file: JsonFileOpt = None,
    training: TrainingOpt = None,
    pending_entries: PendingEntriesOpt = None,
) -> None:
    """The product's figures in one run: a real champion, throughput, latency, sustainable rate.

    Throughput beside raw consume and bare Faust, latency, the sustainable rate, mixed load and
    an outcome backlog, all in one run on this machine.
    """
    if training is not None:
        console.print(render([run_training_bench(training, load_settings().state_dir)]))
        return
    options = (Options.quick_run() if quick else Options()).with_(
        events=events,
        latency_rate=latency_rate,
        latency_s=latency_s,
        probe_s=probe_s,
        confirm_s=confirm_s,
        mixed_s=mixed_s,
        outcome_rate=outcome_rate,
        backlog=backlog,
        pending_entries=parse_sizes(pending_entries),
    )
    run_bench(load_settings(), options, json_file)


def parse_sizes(pending_entries: str | None) -> tuple[int, ...] | None:
    """--pending-entries as a tuple of sizes ('' measures none; None: the run's default)."""
    if pending_entries is None:
        return None
    try:
        return tuple(int(x) for x in pending_entries.split(",") if x.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"--pending-entries: {exc}") from exc
