"""`streamlearn demo`: the whole pipeline in one command."""

from __future__ import annotations

from typing import Annotated

import typer

from streamlearn.cli.common import load_settings
from streamlearn.tools.demo import run_demo


def demo(
    duration: Annotated[float, typer.Option(min=10, help="Seconds of live traffic.")] = 120.0,
    rate: Annotated[float, typer.Option(min=1, help="Live events per second.")] = 300.0,
    backfill_days: Annotated[float, typer.Option(min=0.5, help="Days of history.")] = 3.0,
    drift_at: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
) -> None:
    """The whole pipeline in one command: broker, history, first model, live traffic, retrains."""
    run_demo(
        load_settings(),
        duration_s=duration,
        rate=rate,
        backfill_days=backfill_days,
        drift_at=drift_at,
    )
