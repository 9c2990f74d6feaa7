"""`streamlearn worker`: the Faust worker in this process."""

from __future__ import annotations

from typing import Annotated

import typer

from streamlearn.cli.common import Bootstrap, StateDir, StoreUrl, load_settings
from streamlearn.streams.worker import run_worker


def worker(
    bootstrap: Bootstrap = None,
    store: StoreUrl = None,
    state_dir: StateDir = None,
    web_port: Annotated[int | None, typer.Option(help="HTTP port for /status.")] = None,
    worker_id: Annotated[str | None, typer.Option(help="Name of this worker in logs.")] = None,
    loglevel: Annotated[str, typer.Option(help="Faust log level.")] = "warning",
) -> None:
    """Score transactions and learn from outcomes until stopped (Ctrl-C / SIGTERM)."""
    settings = load_settings(bootstrap, store, state_dir).with_overrides(
        web_port=web_port, worker_id=worker_id
    )
    run_worker(settings, loglevel=loglevel)
