"""`streamlearn bench`: throughput, latency, learning cost and pending-map memory."""

from __future__ import annotations

from typing import Annotated

import typer

from streamlearn.cli.common import console, load_settings
from streamlearn.tools.bench import run_bench
from streamlearn.tools.bench_training import render, run_training_bench


def bench(
    events: Annotated[int, typer.Option(min=1000, help="Events in the throughput run.")] = 20_000,
    latency_rate: Annotated[
        float, typer.Option(min=10, help="Events/s in the latency run.")
    ] = 1000.0,
    latency_s: Annotated[float, typer.Option(min=5, help="Seconds of the latency run.")] = 20.0,
    training: Annotated[
        int | None,
        typer.Option(
            min=1000,
            help="Instead: time building the training set and training on this many labeled "
            "rows (streamlearn/tools/bench_training.py).",
        ),
    ] = None,
    pending_entries: Annotated[
        str, typer.Option(help="Pending-map sizes whose memory to measure (comma list; '' skips).")
    ] = "1000000,2000000",
) -> None:
    """End-to-end events/s and latency through the local broker, beside the raw ceilings.

    Also learning cost beside scoring, and the memory of the label join's pending map.
    """
    if training is not None:
        console.print(render([run_training_bench(training, load_settings().state_dir)]))
        return
    try:
        sizes = tuple(int(x) for x in pending_entries.split(",") if x.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"--pending-entries: {exc}") from exc
    run_bench(
        load_settings(),
        events=events,
        latency_rate=latency_rate,
        latency_s=latency_s,
        pending_entries=sizes,
    )
