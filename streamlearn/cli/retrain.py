"""`streamlearn retrain`: one run with a progress bar over its steps, or `--watch`."""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from streamlearn.batch_retrain.pipeline import RetrainResult, run_retrain
from streamlearn.batch_retrain.triggers import TriggerConfig
from streamlearn.batch_retrain.watch import watch as watch_loop
from streamlearn.cli.common import (
    Bootstrap,
    MaturityS,
    StateDir,
    StoreUrl,
    console,
    err_console,
    load_settings,
    short_number,
)
from streamlearn.cli.gate import GateFlags, gate_options
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore, open_store

# The pipeline's steps as it calls them (module, function, what the bar says). run_retrain has
# no progress callback, so the CLI wraps these functions for the length of one run; a step
# renamed in batch_retrain/ is simply not shown.
STEPS = (
    ("streamlearn.batch_retrain.pipeline", "build_training_set", "building the training set"),
    ("streamlearn.batch_retrain.pipeline", "train", "training LightGBM"),
    ("streamlearn.batch_retrain.pipeline", "save_release", "registering the candidate"),
    ("streamlearn.batch_retrain.pipeline", "_compare_with_champion", "comparing with the champion"),
    ("streamlearn.batch_retrain.publish", "publish_release", "publishing"),
)


@gate_options
def retrain(
    bootstrap: Bootstrap = None,
    store: StoreUrl = None,
    state_dir: StateDir = None,
    maturity_s: MaturityS = None,
    publish: Annotated[bool, typer.Option(help="Publish the model on the models topic.")] = True,
    shadow: Annotated[
        bool | None,
        typer.Option(
            "--shadow/--no-shadow",
            help="Publish a model that passes the gate as shadow (RETRAIN_SHADOW): compared "
            "live, then promoted or rejected.",
        ),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep checking the triggers; retrain when one fires.")
    ] = False,
    every: Annotated[float, typer.Option(min=1, help="Seconds between checks with --watch.")] = 60,
    cooldown: Annotated[
        float, typer.Option(min=0, help="--watch: least seconds between two retrains.")
    ] = 3600,
    schedule: Annotated[
        float, typer.Option(min=1, help="--watch: retrain when the last run is this old (s).")
    ] = 86400,
    min_labels: Annotated[
        int, typer.Option(min=0, help="--watch: least outcomes before any retrain.")
    ] = 1000,
    auc_floor: Annotated[
        float, typer.Option(min=0, max=1, help="--watch: retrain when the online AUC is below.")
    ] = 0.80,
    *,
    gate_flags: GateFlags,
) -> None:
    """Train LightGBM on the history in ClickHouse and publish it to the workers."""
    settings = load_settings(bootstrap, store, state_dir)
    gate = gate_flags.config(settings)
    options: dict[str, Any] = {
        "maturity_s": maturity_s,
        "publish": publish,
        "gate": gate,
        "shadow": settings.retrain_shadow if shadow is None else shadow,
    }
    st = open_store(settings)
    if watch:
        triggers = TriggerConfig(
            schedule_s=schedule,
            cooldown_s=cooldown,
            min_matured_labels=min_labels,
            auc_floor=auc_floor,
        )
        _watch(settings, st, triggers, every, options)
        return
    with step_progress() as progress:
        r = run_retrain(settings, st, reason="manual", **options)
        progress.finish()
    console.print(summary(r, gate.describe()))


def _watch(
    settings: Settings,
    st: Store | RemoteStore,
    triggers: TriggerConfig,
    every: float,
    options: dict[str, Any],
) -> None:
    """--watch: check the triggers every `every` seconds and retrain when one fires."""
    watch_loop(
        settings,
        st,
        triggers,
        interval_s=every,
        on_event=console.print,
        shadow_options={"gate": options["gate"], "maturity_s": options["maturity_s"]},
        **options,
    )


def summary(r: RetrainResult, gate: str) -> str:
    return (
        f"{r.version}: {r.status}{' and published' if r.published else ''} — "
        f"{r.decision.reason}\n"
        f"  gate: {gate}\n"
        f"  trained on {r.rows.get('rows_train', 0):,} rows, holdout AUC "
        f"{short_number(r.metrics.get('holdout_auc'))}, "
        f"AP {short_number(r.metrics.get('holdout_ap'))}, "
        f"{r.timings.get('total_s', float('nan')):.1f}s"
    )


class StepProgress:
    """A bar over STEPS on stderr (only on a terminal), one line per finished step."""

    def __init__(self) -> None:
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        )
        self.task = self.bar.add_task("retrain", total=len(STEPS))

    def wrap(self, label: str, step: Callable[..., Any], then: str = "") -> Callable[..., Any]:
        """step, timed on the bar; `then` names what the pipeline does next (the code between
        two wrapped steps belongs to the next one)."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.bar.update(self.task, description=label)
            started = time.monotonic()
            result = step(*args, **kwargs)
            if not self.bar.disable:
                self.bar.console.print(f"  {label}: {time.monotonic() - started:.1f}s")
            self.bar.update(self.task, advance=1, description=then or label)
            return result

        return timed

    def finish(self) -> None:
        # Publishing is skipped when the gate rejects: the bar ends full either way.
        self.bar.update(self.task, completed=len(STEPS))


@contextlib.contextmanager
def step_progress() -> Iterator[StepProgress]:
    """STEPS wrapped with a progress bar for the length of the block, then put back."""
    progress = StepProgress()
    progress.bar.update(progress.task, description=STEPS[0][2])
    originals: list[tuple[Any, str, Any]] = []
    try:
        for i, (module_name, name, label) in enumerate(STEPS):
            module = importlib.import_module(module_name)
            step = getattr(module, name, None)
            if step is None:
                continue
            then = STEPS[i + 1][2] if i + 1 < len(STEPS) else ""
            originals.append((module, name, step))
            setattr(module, name, progress.wrap(label, step, then))
        with progress.bar:
            yield progress
    finally:
        for module, name, step in originals:
            setattr(module, name, step)
