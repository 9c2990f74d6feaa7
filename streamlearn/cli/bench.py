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


def bench(
    events: Annotated[
        int | None, typer.Option(min=1000, help="Preloaded events of the throughput rows.")
    ] = None,
    latency_rate: Annotated[
        float | None, typer.Option(min=10, help="Events/s of the latency, mixed, backlog runs.")
    ] = None,
    latency_s: Annotated[float | None, typer.Option(min=5, help="Latency run (s).")] = None,
    probe_s: Annotated[
        float | None, typer.Option(min=3, help="Each probe of the sustainable-rate search (s).")
    ] = None,
    confirm_s: Annotated[
        float | None, typer.Option(min=5, help="Confirmation of the sustainable rate (s).")
    ] = None,
    mixed_s: Annotated[float | None, typer.Option(min=5, help="Mixed-load run (s).")] = None,
    outcome_rate: Annotated[
        float | None, typer.Option(min=1, help="Outcomes/s in the mixed run.")
    ] = None,
    backlog: Annotated[
        int | None, typer.Option(min=100, help="Outcomes put on the topic at once.")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="A ~3-minute smoke: every phase, shorter.")
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write every figure to this JSON file.")
    ] = None,
    training: Annotated[
        int | None,
        typer.Option(
            min=1000,
            help="Instead: time building the training set and training on this many labeled "
            "rows (streamlearn/tools/bench_training.py).",
        ),
    ] = None,
    pending_entries: Annotated[
        str | None,
        typer.Option(help="Pending-map sizes whose memory to measure (comma list; '' skips)."),
    ] = None,
) -> None:
    """The product's figures in one run: a real champion, throughput, latency, sustainable rate.

    Throughput beside raw consume and bare Faust, latency, the sustainable rate, mixed load and
    an outcome backlog, all in one run on this machine.
    """
    if training is not None:
        console.print(render([run_training_bench(training, load_settings().state_dir)]))
        return
    try:
        sizes = None
        if pending_entries is not None:
            sizes = tuple(int(x) for x in pending_entries.split(",") if x.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"--pending-entries: {exc}") from exc
    options = (Options.quick_run() if quick else Options()).with_(
        events=events,
        latency_rate=latency_rate,
        latency_s=latency_s,
        probe_s=probe_s,
        confirm_s=confirm_s,
        mixed_s=mixed_s,
        outcome_rate=outcome_rate,
        backlog=backlog,
        pending_entries=sizes,
    )
    run_bench(load_settings(), options, json_file)
