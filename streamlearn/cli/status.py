"""`streamlearn status`: one look or `--watch`, as tables or `--json`; a distinct exit status
when no worker answers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live

from streamlearn.cli.common import Bootstrap, StateDir, StoreUrl, console, load_settings
from streamlearn.foundation.errors import WorkerUnavailable
from streamlearn.tools.status import collect_status, render_status, status_renderables


def status(
    bootstrap: Bootstrap = None,
    store: StoreUrl = None,
    state_dir: StateDir = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document (with --watch: one per line).")
    ] = False,
    watch: Annotated[
        float | None,
        typer.Option(
            "--watch",
            min=0.5,
            metavar="[SECONDS]",
            help="Refresh every SECONDS (2 if not given) until Ctrl-C.",
        ),
    ] = None,
) -> None:
    """What the running worker, Kafka (reachability, consumer lag) and the store hold now."""
    settings = load_settings(bootstrap, store, state_dir)
    if watch is not None:
        watch_status(lambda: collect_status(settings), watch, as_json)
        return
    report = collect_status(settings)
    if as_json:
        print(json.dumps(report))
    else:
        render_status(console, report)
    if report["worker"] is None:
        raise WorkerUnavailable(f"no worker answered at {report['worker_url']}")


def watch_status(collect: Callable[[], dict[str, Any]], every_s: float, as_json: bool) -> None:
    """Show the status again every every_s seconds, until Ctrl-C (exit status 130)."""
    if as_json:
        while True:
            print(json.dumps(collect()), flush=True)
            time.sleep(every_s)
    with Live(console=console, auto_refresh=False) as live:
        while True:
            live.update(Group(*status_renderables(collect())), refresh=True)
            time.sleep(every_s)
