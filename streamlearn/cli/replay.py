"""`streamlearn replay FILE`: a backtest of past transactions through the production path, with
its progress, the weekly table per scorer and where the results and the report were written."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from streamlearn.cli.common import Bootstrap, StateDir, console, err_console, load_settings
from streamlearn.foundation.clock import DAY_MS, utc
from streamlearn.foundation.errors import ConfigError
from streamlearn.tools.replay import ReplayOptions, ReplayProgress, run_replay
from streamlearn.tools.replay.source import parse_duration, parse_mapping

LOSS_NOTE = (
    "streaming loss = reference - served: what scoring as the stream went (state, learners, "
    "blend, a champion behind the gate) lost against a LightGBM trained offline on every "
    "matured row of the same logged features at each retrain point"
)


# The verb's options, one alias each, so its signature reads as a list of flags.
FileOpt = Annotated[Path, typer.Argument(help="CSV or Parquet of past transactions.")]
ColumnMapOpt = Annotated[
    str | None,
    typer.Option(
        "--map",
        help="field=COLUMN pairs, comma-separated (transaction_id, card_id, merchant_id, "
        "amount, event_time, is_fraud, optional currency, country, merchant_category, "
        "channel, device_id), or `handbook` for `streamlearn simulate --to-file` files.",
    ),
]
LabelDelayOpt = Annotated[
    str, typer.Option(help="Outcomes known this long after their transaction (7d, 36h).")
]
OutcomeTimeColumnOpt = Annotated[
    str | None,
    typer.Option(help="Column of when each outcome became known (instead of --label-delay)."),
]
LegitLabelShareOpt = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Share of legit rows that get an outcome.")
]
WarmupOpt = Annotated[
    str, typer.Option(help="History that warms the state and trains the first champion.")
]
RetrainEveryOpt = Annotated[
    str, typer.Option(help="Retrain cadence in event time (0: no retrain after the first).")
]
StepOpt = Annotated[str, typer.Option(help="Event time published before waiting for the worker.")]
MaturityOpt = Annotated[
    str | None,
    typer.Option(help="Label maturity of the retrains (default: the label delay)."),
]
TopKOpt = Annotated[int, typer.Option(min=1, help="Alerts per day for precision@k.")]
SeedOpt = Annotated[int, typer.Option(help="Which legit rows get an outcome.")]
OutOpt = Annotated[
    Path | None,
    typer.Option(help="Results directory (default: <state dir>/replays/<file>-<time>)."),
]
LearnersOpt = Annotated[
    str | None, typer.Option(help="Online learners (STREAMLEARN_LEARNERS), e.g. lr,hst.")
]
WebPortOpt = Annotated[
    int | None, typer.Option(help="The replay worker's web port (default: a free one).")
]
KeepTopicsOpt = Annotated[
    bool, typer.Option(help="Keep the replay's topics on the broker afterwards.")
]


def replay(
    file: FileOpt,
    column_map: ColumnMapOpt = None,
    label_delay: LabelDelayOpt = "7d",
    outcome_time_column: OutcomeTimeColumnOpt = None,
    legit_label_share: LegitLabelShareOpt = 0.1,
    warmup: WarmupOpt = "0d",
    retrain_every: RetrainEveryOpt = "7d",
    step: StepOpt = "1d",
    maturity: MaturityOpt = None,
    top_k: TopKOpt = 50,
    seed: SeedOpt = 7,
    out: OutOpt = None,
    learners: LearnersOpt = None,
    web_port: WebPortOpt = None,
    keep_topics: KeepTopicsOpt = False,
    bootstrap: Bootstrap = None,
    state_dir: StateDir = None,
) -> None:
    """Backtest a file of past transactions through the production path, week by week."""
    settings = load_settings(bootstrap, state_dir=state_dir).with_overrides(learners=learners)
    delay = None if outcome_time_column else parse_duration(label_delay, "--label-delay")
    every = parse_duration(retrain_every, "--retrain-every")
    options = ReplayOptions(
        file=file,
        mapping=parse_mapping(column_map),
        out_dir=out or default_out(settings.state_dir, file),
        label_delay_ms=delay,
        outcome_time_column=outcome_time_column,
        legit_share=legit_label_share,
        warmup_ms=parse_duration(warmup, "--warmup"),
        retrain_every_ms=every or None,
        step_ms=positive(parse_duration(step, "--step"), "--step"),
        maturity_ms=parse_duration(maturity, "--maturity") if maturity else None,
        top_k=top_k,
        seed=seed,
        keep_topics=keep_topics,
        web_port=web_port,
    )
    with ReplayBar() as bar:
        summary = run_replay(settings, options, on_progress=bar.update)
    show(summary)


def positive(ms: int, flag: str) -> int:
    if ms <= 0:
        raise ConfigError(f"{flag} must be longer than 0")
    return ms


def default_out(state_dir: Path, file: Path) -> Path:
    return state_dir / "replays" / f"{file.stem}-{time.strftime('%Y%m%d-%H%M%S')}"


class ReplayBar:
    """A bar on stderr (on a terminal) in days of event time, with what the worker has done."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[note]}"),
            console=err_console,
            disable=not err_console.is_terminal,
        )
        self.task: Any = None

    def __enter__(self) -> ReplayBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def update(self, p: ReplayProgress) -> None:
        total = max(1.0, (p.last_ms - p.first_ms) / DAY_MS)
        if self.task is None:
            self.task = self.bar.add_task("replay", total=total, note="")
        done = max(0.0, min(total, (p.event_ms - p.first_ms) / DAY_MS)) if p.event_ms else 0.0
        last = p.retrains[-1] if p.retrains else None
        note = (
            f"{p.phase} · {utc(p.event_ms or p.first_ms):%Y-%m-%d} · {p.scored:,} scored · "
            f"{p.outcomes:,} outcomes · model {p.model_version}"
            + (f" · retrain {last.status}" if last else "")
        )
        self.bar.update(self.task, completed=done, description=p.phase, note=note)


def show(summary: dict[str, Any]) -> None:
    """The weekly table, the streaming loss, the retrains, and the files written."""
    console.print(weekly(summary["table"], summary["options"]["top_k"]))
    if not summary["loss"].empty:
        console.print(loss_table(summary["loss"]))
        console.print(LOSS_NOTE)
    console.print(retrains(summary["retrains"]), markup=False, highlight=False)
    refused = summary["rows_refused"]
    if refused:
        line = f"rows not replayed: {sum(refused.values()):,} ({refused})"
        console.print(line, markup=False, highlight=False)
    files = summary["files"]
    console.print(f"weekly table: {files['csv']} and {files['json']}")
    console.print(f"report: {files['report']}")


def weekly(table: pd.DataFrame, top_k: int) -> Table:
    t = Table(title="served quality per event week and scorer (labels: the whole file)")
    for name in ("week", "scorer", "rows", "frauds", "ROC AUC", "AP", f"p@{top_k}/day"):
        t.add_column(name, no_wrap=True, justify="left" if name in ("week", "scorer") else "right")
    week = None
    for r in table.itertuples(index=False):
        if week is not None and r.week != week:
            t.add_section()
        t.add_row(
            r.week if r.week != week else "",
            r.scorer,
            f"{r.rows:,}",
            f"{r.frauds:,}",
            fmt(r.auc),
            fmt(r.ap),
            fmt(r.p_at_k),
        )
        week = r.week
    return t


def loss_table(loss: pd.DataFrame) -> Table:
    t = Table(title="streaming loss: reference - served")
    for name in ("week", "ROC AUC", "AP", "p@k/day"):
        t.add_column(name, justify="left" if name == "week" else "right")
    for week, r in loss.iterrows():
        t.add_row(
            str(week),
            fmt(r["auc"], sign=True),
            fmt(r["ap"], sign=True),
            fmt(r["p_at_k"], sign=True),
        )
    return t


def retrains(rows: list[dict[str, Any]]) -> str:
    """One line per retrain: when (event time), the version, the gate's decision."""
    lines = ["retrains (event time, the production gate):"]
    for r in rows:
        scores = f"holdout AUC {fmt(r['holdout_auc'])}, AP {fmt(r['holdout_ap'])}"
        lines.append(
            f"  {utc(r['as_of'] + 1):%Y-%m-%d} {r['version'] or '-'} {r['status']}"
            + (f" ({scores})" if r["version"] else "")
            + f": {r['note']}"
        )
    return "\n".join(lines)


def fmt(value: Any, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.3f}" if sign else f"{value:.3f}"
