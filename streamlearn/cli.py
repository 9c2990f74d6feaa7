"""The `streamlearn` command line: thin verbs over the library, errors printed as one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import SchemaError

try:  # typer >= 0.25 vendors its own click
    from typer._click import exceptions as cli_exc
except ImportError:  # older typer uses click itself
    from click import exceptions as cli_exc  # type: ignore[no-redef]

app = typer.Typer(
    help="Real-time fraud scoring on Kafka with continuous learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
schemas_app = typer.Typer(help="Writer schemas producers may use.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry.", invoke_without_command=True)
app.add_typer(schemas_app, name="schemas")
app.add_typer(models_app, name="models")
console = Console()

Bootstrap = Annotated[
    str | None, typer.Option("--bootstrap", help="Kafka bootstrap (STREAMLEARN_KAFKA_BOOTSTRAP).")
]
StoreUrl = Annotated[
    str | None, typer.Option("--store", help="ClickHouse URL (STREAMLEARN_CLICKHOUSE_URL).")
]
StateDir = Annotated[
    Path | None, typer.Option("--state-dir", help="Local state (STREAMLEARN_STATE_DIR).")
]


def _settings(
    bootstrap: str | None = None, store: str | None = None, state_dir: Path | None = None
) -> Settings:
    try:
        base = Settings()
    except Exception as exc:  # pydantic's ValidationError names the variable
        raise StreamlearnError(f"invalid setting: {str(exc).splitlines()[1:3]}") from exc
    return base.with_overrides(kafka_bootstrap=bootstrap, clickhouse_url=store, state_dir=state_dir)


@app.command()
def up(bootstrap: Bootstrap = None, state_dir: StateDir = None) -> None:
    """Start the local Kafka broker (reused if running) and create the topics."""
    from streamlearn.foundation.kafka import ensure_topics
    from streamlearn.tools import broker

    settings = _settings(bootstrap, state_dir=state_dir)
    address = broker.up(settings)
    if settings.kafka_security_protocol.endswith("SSL") and settings.kafka_ssl_cafile is None:
        ca = broker.ca_file(settings)
        console.print(
            f"Kafka is up at {address} (TLS): clients need STREAMLEARN_KAFKA_SSL_CAFILE={ca}"
        )
        return
    ensure_topics(settings)
    console.print(f"Kafka is up at {address}")


@app.command()
def down(bootstrap: Bootstrap = None, state_dir: StateDir = None) -> None:
    """Stop the local Kafka broker started by `up` (nothing else)."""
    from streamlearn.tools import broker

    stopped = broker.down(_settings(bootstrap, state_dir=state_dir))
    console.print("Kafka stopped" if stopped else "no local Kafka was running")


@app.command()
def worker(
    bootstrap: Bootstrap = None,
    store: StoreUrl = None,
    state_dir: StateDir = None,
    web_port: Annotated[int | None, typer.Option(help="HTTP port for /status.")] = None,
    worker_id: Annotated[str | None, typer.Option(help="Name of this worker in logs.")] = None,
    loglevel: Annotated[str, typer.Option(help="Faust log level.")] = "warning",
) -> None:
    """Score transactions and learn from outcomes until stopped (Ctrl-C / SIGTERM)."""
    from streamlearn.streams.worker import run_worker

    settings = _settings(bootstrap, store, state_dir).with_overrides(
        web_port=web_port, worker_id=worker_id
    )
    run_worker(settings, loglevel=loglevel)


@app.command()
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
    bootstrap: Bootstrap = None,
) -> None:
    """Produce realistic transactions and their outcomes (the upstream systems)."""
    from streamlearn.foundation.kafka import check_reachable, ensure_topics
    from streamlearn.tools.simulate.producer import run

    settings = _settings(bootstrap)
    check_reachable(settings)
    ensure_topics(settings)
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
    )
    drift = f", drift from event {report.drift_at_event:,}" if report.drift_at_event else ""
    console.print(
        f"sent {report.transactions:,} transactions ({report.frauds:,} fraud) and "
        f"{report.outcomes:,} outcomes in {report.elapsed_s:.1f}s ({report.rate:,.0f}/s)"
        f"{drift}; {report.outcomes_pending:,} outcomes not yet due"
    )


def _gate(
    settings: Settings,
    primary: str | None,
    margin: float | None,
    tol_auc: float | None,
    tol_p_at_k_day: float | None,
    tol_logloss: float | None,
    tol_ece: float | None,
):
    """The gate from settings with any --gate-* flag applied."""
    from pydantic import ValidationError

    from streamlearn.batch_retrain.gate import gate_from_settings

    try:
        given = settings.with_overrides(
            gate_primary=primary,
            gate_margin=margin,
            gate_tol_auc=tol_auc,
            gate_tol_p_at_k_day=tol_p_at_k_day,
            gate_tol_logloss=tol_logloss,
            gate_tol_ece=tol_ece,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise StreamlearnError(
            f"invalid gate setting --gate-{str(error['loc'][0])[5:].replace('_', '-')}: "
            f"{error['msg']}"
        ) from exc
    return gate_from_settings(given)


GatePrimary = Annotated[
    str | None,
    typer.Option("--gate-primary", help="ap, auc, p_at_k_day, logloss or ece (GATE_PRIMARY)."),
]
GateMargin = Annotated[
    float | None,
    typer.Option("--gate-margin", help="Least gain on the primary metric (GATE_MARGIN)."),
]
TolAuc = Annotated[
    float | None, typer.Option("--gate-tol-auc", min=0, help="Most ROC AUC lost (GATE_TOL_AUC).")
]
TolTopK = Annotated[
    float | None,
    typer.Option("--gate-tol-p-at-k-day", min=0, help="Most top-k-per-day precision lost."),
]
TolLogloss = Annotated[
    float | None, typer.Option("--gate-tol-logloss", min=0, help="Most log loss added.")
]
TolEce = Annotated[
    float | None, typer.Option("--gate-tol-ece", min=0, help="Most calibration error added.")
]


@app.command()
def retrain(
    bootstrap: Bootstrap = None,
    store: StoreUrl = None,
    state_dir: StateDir = None,
    maturity_s: Annotated[
        float | None, typer.Option(min=0, help="Label maturity in seconds (default from settings).")
    ] = None,
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
    gate_primary: GatePrimary = None,
    gate_margin: GateMargin = None,
    gate_tol_auc: TolAuc = None,
    gate_tol_p_at_k_day: TolTopK = None,
    gate_tol_logloss: TolLogloss = None,
    gate_tol_ece: TolEce = None,
) -> None:
    """Train LightGBM on the history in ClickHouse and publish it to the workers."""
    from streamlearn.batch_retrain.pipeline import run_retrain
    from streamlearn.foundation.store.access import open_store

    settings = _settings(bootstrap, store, state_dir)
    gate = _gate(
        settings,
        gate_primary,
        gate_margin,
        gate_tol_auc,
        gate_tol_p_at_k_day,
        gate_tol_logloss,
        gate_tol_ece,
    )
    as_shadow = settings.retrain_shadow if shadow is None else shadow
    st = open_store(settings)
    if watch:
        from streamlearn.batch_retrain.triggers import TriggerConfig
        from streamlearn.batch_retrain.watch import watch as watch_loop

        watch_loop(
            settings,
            st,
            TriggerConfig(
                schedule_s=schedule,
                cooldown_s=cooldown,
                min_matured_labels=min_labels,
                auc_floor=auc_floor,
            ),
            interval_s=every,
            on_event=console.print,
            shadow_options={"gate": gate, "maturity_s": maturity_s},
            maturity_s=maturity_s,
            publish=publish,
            gate=gate,
            shadow=as_shadow,
        )
        return
    r = run_retrain(
        settings,
        st,
        maturity_s=maturity_s,
        publish=publish,
        reason="manual",
        gate=gate,
        shadow=as_shadow,
    )
    console.print(
        f"{r.version}: {r.status}{' and published' if r.published else ''} — "
        f"{r.decision.reason}\n"
        f"  gate: {gate.describe()}\n"
        f"  trained on {r.rows.get('rows_train', 0):,} rows, holdout AUC "
        f"{_cell(r.metrics.get('holdout_auc'))}, AP {_cell(r.metrics.get('holdout_ap'))}, "
        f"{r.timings.get('total_s', float('nan')):.1f}s"
    )


@models_app.callback()
def models(ctx: typer.Context, store: StoreUrl = None, state_dir: StateDir = None) -> None:
    """List model versions with status, training window and metrics."""
    if ctx.invoked_subcommand is not None:
        return
    from streamlearn.batch_retrain.costs import model_costs
    from streamlearn.batch_retrain.registry import list_models
    from streamlearn.foundation.store.access import open_store

    st = open_store(_settings(store=store, state_dir=state_dir), readonly=True)
    df = list_models(st)
    costs = {r.version: r for r in model_costs(st).itertuples(index=False)}
    table = Table(title="models (newest first)")
    columns = ("version", "status", "created", "trained on", "rows", "AUC", "AP", "why", "decision")
    for col in columns:
        table.add_column(col, overflow="fold")
    cost_table = Table(title="cost (CPU seconds)")
    for col in ("version", "training", "inference", "per 1k predictions", "inference > training"):
        cost_table.add_column(col)
    for row in df.itertuples(index=False):
        cost = costs.get(row.version)
        if cost is not None:
            passed = cost.inference_passed_training_at
            cost_table.add_row(
                row.version,
                _cell(float(cost.train_cpu)),
                f"{_cell(float(cost.inference_cpu_s))} ({int(cost.predictions):,} predictions)",
                _cell(float(cost.cpu_s_per_1k)),
                "not yet" if passed is None or passed != passed else f"{passed:%Y-%m-%d %H:%M}",
            )
        # A Map column reads as a dict from chdb, as (key, value) pairs through the worker.
        metrics = dict(row.metrics) if row.metrics is not None else {}
        decision = row.decision or ""
        if row.live_decision:
            decision = f"{decision}; {row.live_decision}" if decision else row.live_decision
        elif row.reason and row.reason != decision:
            decision = f"{decision} [{row.reason}]" if decision else row.reason
        table.add_row(
            row.version,
            row.status,
            f"{row.created_at:%Y-%m-%d %H:%M}",
            f"{row.train_start:%m-%d %H:%M} → {row.train_end:%m-%d %H:%M}",
            f"{row.rows_train:,}",
            _cell(metrics.get("holdout_auc")),
            _cell(metrics.get("holdout_ap")),
            row.trigger,
            decision,
        )
    console.print(table)
    console.print(cost_table)


@models_app.command("rollback")
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
    from streamlearn.batch_retrain.rollback import rollback
    from streamlearn.foundation.store.access import open_store

    settings = _settings(bootstrap, store, state_dir)
    done = rollback(settings, open_store(settings), version)
    console.print(f"{done.version} is champion again (was {done.previous or 'none'})")


@models_app.command("shadow-check")
def models_shadow_check(
    bootstrap: Bootstrap = None,
    store: StoreUrl = None,
    state_dir: StateDir = None,
    maturity_s: Annotated[
        float | None, typer.Option(min=0, help="Label maturity in seconds (default from settings).")
    ] = None,
    min_labels: Annotated[
        int | None, typer.Option(min=1, help="Matured transactions needed (SHADOW_MIN_LABELS).")
    ] = None,
    gate_primary: GatePrimary = None,
    gate_margin: GateMargin = None,
    gate_tol_auc: TolAuc = None,
    gate_tol_p_at_k_day: TolTopK = None,
    gate_tol_logloss: TolLogloss = None,
    gate_tol_ece: TolEce = None,
) -> None:
    """Compare the shadow model with the champion on live traffic; promote, reject or wait."""
    from streamlearn.batch_retrain.shadow import check_shadow
    from streamlearn.foundation.store.access import open_store

    settings = _settings(bootstrap, store, state_dir)
    gate = _gate(
        settings,
        gate_primary,
        gate_margin,
        gate_tol_auc,
        gate_tol_p_at_k_day,
        gate_tol_logloss,
        gate_tol_ece,
    )
    check = check_shadow(
        settings, open_store(settings), gate=gate, maturity_s=maturity_s, min_labels=min_labels
    )
    if check.shadow is None:
        console.print("no shadow model")
        return
    console.print(
        f"shadow {check.shadow} vs champion {check.champion}: {check.action} — {check.reason}"
    )


@app.command()
def status(bootstrap: Bootstrap = None, store: StoreUrl = None, state_dir: StateDir = None) -> None:
    """What the running worker and the store hold now."""
    from streamlearn.tools.status import collect_status, render_status

    render_status(console, collect_status(_settings(bootstrap, store, state_dir)))


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A read-only SQL query on the streamlearn tables.")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    store: StoreUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Run read-only SQL against the analysts' tables (through the worker if it owns chdb)."""
    from streamlearn.foundation.errors import StoreUnavailable
    from streamlearn.foundation.store.access import open_store, read_only_error, read_only_refusal

    if fmt not in ("table", "csv", "json"):
        raise StreamlearnError(f"--format must be table, csv or json, not {fmt!r}")
    refusal = read_only_refusal(sql)
    if refusal:
        raise StreamlearnError(refusal)
    st = open_store(_settings(store=store, state_dir=state_dir), readonly=True)
    try:
        df = st.query_df(sql, readonly=1)
    except StoreUnavailable as exc:
        raise read_only_error(exc) from exc
    if fmt == "csv":
        sys.stdout.write(df.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(df.to_json(orient="records", date_format="iso") + "\n")
    else:
        _print_df(df, None)


@schemas_app.command("register")
def schemas_register(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="An .avsc file.")],
    bootstrap: Bootstrap = None,
) -> None:
    """Register a writer schema after checking it resolves against the reader schema (and in the
    schema registry too when STREAMLEARN_SCHEMA_REGISTRY_URL is set)."""
    from streamlearn.schemas.publish import register

    done = register(_settings(bootstrap), json.loads(file.read_text()))
    where = f", and as {done.subject} id {done.schema_id}" if done.subject else ""
    console.print(f"registered {file.name} as {done.fingerprint}{where}")


@schemas_app.command("list")
def schemas_list(bootstrap: Bootstrap = None) -> None:
    """List the writer schemas registered on the schemas topic."""
    from streamlearn.schemas.publish import registered

    table = Table("fingerprint", "name", "fields")
    for fp, schema in registered(_settings(bootstrap)):
        table.add_row(fp, schema.get("name", "?"), str(len(schema.get("fields", []))))
    console.print(table)


@app.command()
def demo(
    duration: Annotated[float, typer.Option(min=10, help="Seconds of live traffic.")] = 120.0,
    rate: Annotated[float, typer.Option(min=1, help="Live events per second.")] = 300.0,
    backfill_days: Annotated[float, typer.Option(min=0.5, help="Days of history.")] = 3.0,
    drift_at: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
) -> None:
    """The whole pipeline in one command: broker, history, first model, live traffic, retrains."""
    from streamlearn.tools.demo import run_demo

    run_demo(
        _settings(), duration_s=duration, rate=rate, backfill_days=backfill_days, drift_at=drift_at
    )


@app.command()
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
            "rows (batch_retrain/bench_training.py).",
        ),
    ] = None,
    pending_entries: Annotated[
        str | None,
        typer.Option(help="Pending-map sizes whose memory to measure (comma list; '' skips)."),
    ] = None,
) -> None:
    """The product's figures in one run: a real champion, throughput beside raw consume and
    bare Faust, latency, the sustainable rate, mixed load, an outcome backlog (issue 9)."""
    if training is not None:
        from streamlearn.tools.bench_training import render, run_training_bench

        console.print(render([run_training_bench(training, _settings().state_dir)]))
        return
    from streamlearn.tools.bench.options import Options
    from streamlearn.tools.bench.run import run_bench

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
    run_bench(_settings(), options, json_file)


def _print_df(df, title: str | None) -> None:
    table = Table(title=title)
    for col in df.columns:
        table.add_column(str(col))
    for row in df.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    console.print(table)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def main() -> None:
    """Entry point: errors a user can act on are one line on stderr, exit status 2."""
    try:
        app(standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except cli_exc.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            print(exc.ctx.get_help())
            sys.exit(0)
        cmd = exc.ctx.command_path if exc.ctx else "streamlearn"
        print(f"{cmd}: {exc.format_message()} (see {cmd} --help)", file=sys.stderr)
        sys.exit(2)
    except cli_exc.ClickException as exc:
        print(f"streamlearn: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (StreamlearnError, SchemaError) as exc:
        print(f"streamlearn: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
