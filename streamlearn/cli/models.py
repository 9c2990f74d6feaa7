"""`streamlearn models` (the registry and costs), `models rollback`, `models shadow-check`."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from streamlearn.batch_retrain.costs import model_costs
from streamlearn.batch_retrain.registry import list_models
from streamlearn.batch_retrain.rollback import rollback
from streamlearn.batch_retrain.shadow import check_shadow
from streamlearn.cli.common import (
    Bootstrap,
    MaturityS,
    StateDir,
    StoreUrl,
    console,
    load_settings,
    short_number,
    verb_app,
)
from streamlearn.cli.gate import GateFlags, gate_options
from streamlearn.foundation.store.access import open_store

app = verb_app(
    help="The model registry: versions, status, metrics, costs; rollback, shadow-check.",
    invoke_without_command=True,
)
REGISTRY_COLUMNS = (
    "version",
    "status",
    "created",
    "trained on",
    "rows",
    "AUC",
    "AP",
    "why",
    "decision",
)
COST_COLUMNS = ("version", "training", "inference", "per 1k predictions", "inference > training")


@app.callback()
def models(ctx: typer.Context, store: StoreUrl = None, state_dir: StateDir = None) -> None:
    """List model versions with status, training window and metrics."""
    if ctx.invoked_subcommand is not None:
        return
    st = open_store(load_settings(store=store, state_dir=state_dir), readonly=True)
    df = list_models(st)
    costs = {r.version: r for r in model_costs(st).itertuples(index=False)}
    console.print(registry_table(df))
    console.print(cost_table(df, costs))


def registry_table(df: pd.DataFrame) -> Table:
    table = Table(title="models (newest first)")
    for col in REGISTRY_COLUMNS:
        table.add_column(col, overflow="fold")
    for row in df.itertuples(index=False):
        metrics = dict(row.metrics) if row.metrics is not None else {}
        table.add_row(
            row.version,
            row.status,
            f"{row.created_at:%Y-%m-%d %H:%M}",
            f"{row.train_start:%m-%d %H:%M} → {row.train_end:%m-%d %H:%M}",
            f"{row.rows_train:,}",
            short_number(metrics.get("holdout_auc")),
            short_number(metrics.get("holdout_ap")),
            row.trigger,
            _decision(row),
        )
    return table


def _decision(row: Any) -> str:
    """The offline decision, with the live one (shadows) or the status reason beside it."""
    decision = row.decision or ""
    if row.live_decision:
        return f"{decision}; {row.live_decision}" if decision else row.live_decision
    if row.reason and row.reason != decision:
        return f"{decision} [{row.reason}]" if decision else row.reason
    return decision


def cost_table(df: pd.DataFrame, costs: dict[str, Any]) -> Table:
    table = Table(title="cost (CPU seconds)")
    for col in COST_COLUMNS:
        table.add_column(col)
    for version in df["version"] if len(df) else ():
        cost = costs.get(version)
        if cost is None:
            continue
        passed = cost.inference_passed_training_at
        table.add_row(
            version,
            short_number(float(cost.train_cpu)),
            f"{short_number(float(cost.inference_cpu_s))} ({int(cost.predictions):,} predictions)",
            short_number(float(cost.cpu_s_per_1k)),
            "not yet" if passed is None or passed != passed else f"{passed:%Y-%m-%d %H:%M}",
        )
    return table


@app.command("rollback")
def models_rollback(
    version: Annotated[
        str | None,
        typer.Argument(help="Version to serve again (default: the champion before this one)."),
    ] = None,
    bootstrap: Bootstrap = None,
    store: StoreUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Put a previous model back into service on every worker."""
    settings = load_settings(bootstrap, store, state_dir)
    done = rollback(settings, open_store(settings), version)
    console.print(f"{done.version} is champion again (was {done.previous or 'none'})")


@app.command("shadow-check")
@gate_options
def models_shadow_check(
    bootstrap: Bootstrap = None,
    store: StoreUrl = None,
    state_dir: StateDir = None,
    maturity_s: MaturityS = None,
    min_labels: Annotated[
        int | None, typer.Option(min=1, help="Matured transactions needed (SHADOW_MIN_LABELS).")
    ] = None,
    *,
    gate_flags: GateFlags,
) -> None:
    """Compare the shadow model with the champion on live traffic; promote, reject or wait."""
    settings = load_settings(bootstrap, store, state_dir)
    gate = gate_flags.config(settings)
    check = check_shadow(
        settings, open_store(settings), gate=gate, maturity_s=maturity_s, min_labels=min_labels
    )
    if check.shadow is None:
        console.print("no shadow model")
        return
    console.print(
        f"shadow {check.shadow} vs champion {check.champion}: {check.action} — {check.reason}"
    )
