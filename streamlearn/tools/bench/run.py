"""`streamlearn bench`: every phase in order on one broker and one worker, the figures printed
and written to `--json FILE`; fails only on an error or a prediction served by no model."""

from __future__ import annotations

import json
import math
import time
import uuid
from pathlib import Path
from typing import Any

from streamlearn.foundation.clock import now_ms
from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.kafka import ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.tools import broker
from streamlearn.tools.bench import ceilings, phases, tables
from streamlearn.tools.bench.champion import (
    History,
    Served,
    history_window,
    publish_history,
    simulator,
    train_and_serve,
)
from streamlearn.tools.bench.figures import ratio, served_none
from streamlearn.tools.bench.load import high_watermarks, produce_all
from streamlearn.tools.bench.options import Options
from streamlearn.tools.bench.paced import Context, harness_floor
from streamlearn.tools.bench.pending import measure
from streamlearn.tools.bench.search import RateSearch
from streamlearn.tools.bench.targets import evaluate
from streamlearn.tools.processes import WorkerProcess

PRELOAD_SPAN_S = 3000.0  # the preload's event times fill most of the hour after history
FLOOR_S = 5.0  # the harness floor's run: producer -> broker -> watcher, no worker


def bench_settings(base: Settings, options: Options) -> Settings:
    """A fresh topic prefix and store; the worker otherwise runs as deployed (default
    learners and settings) except for the small pending map (Options.pending_max_entries)."""
    run_id = uuid.uuid4().hex[:8]
    bench_dir = base.state_dir / "bench" / run_id
    return base.with_overrides(
        topic_prefix=f"bench-{run_id}-",
        state_dir=bench_dir,
        clickhouse_url=f"chdb://{bench_dir / 'clickhouse'}",
        worker_id="bench",
        pending_max_entries=options.pending_max_entries,
    )


def run_bench(base: Settings, options: Options, json_path: Path | None = None) -> dict[str, Any]:
    """Run every phase, print each figure as it comes and the summary, write the JSON."""
    options.check()
    t0 = time.monotonic()
    settings = bench_settings(base, options)
    started_broker = not broker.is_running(base)
    tables.console.print(
        f"bench{' --quick' if options.quick else ''}: broker {broker.up(base)}; "
        f"state in {settings.state_dir}; worker log {settings.state_dir / 'worker.log'}"
    )
    ensure_topics(settings)
    worker = WorkerProcess(settings, settings.state_dir / "worker.log")
    ctx = Context(
        settings, worker, simulator(options.history_events, options.history_days, options.seed)
    )
    try:
        worker.start()
        result = _phases(ctx, options)
    finally:
        worker.stop()
        if started_broker:
            broker.down(base)
    result["pending_memory"] = measure(list(options.pending_entries))
    tables.pending_memory(result["pending_memory"])
    result["run"] = {
        "seconds": round(time.monotonic() - t0, 1),
        "options": options.as_dict(),
        "worker": f"default settings and learners ({settings.learners}), pending map "
        f"{settings.pending_max_entries:,}",
    }
    targets = evaluate(result)
    result["targets"] = [
        {"name": t.name, "target": t.target, "measured": t.measured, "status": t.status}
        for t in targets
    ]
    tables.summary(targets, result)
    if json_path is not None:
        json_path.write_text(json.dumps(_clean(result), indent=2) + "\n")
        tables.console.print(f"figures written to {json_path}")
    _fail_on_errors(result)
    return result


def _phases(ctx: Context, options: Options) -> dict[str, Any]:
    settings, worker = ctx.settings, ctx.worker
    took: dict[str, float] = {}
    clock = _Lap(took)
    end_ms = history_window(now_ms())
    history = publish_history(settings, ctx.sim, worker, options.history_days, end_ms)
    served = train_and_serve(settings, worker)
    tables.champion(history, served)
    clock.lap("champion")

    rows = _throughput(ctx, options, end_ms)
    worker_rate = next(r.per_s for r in rows if r.key == "worker")
    tables.throughput(rows)
    clock.lap("throughput")

    floor = harness_floor(settings, options.latency_rate, FLOOR_S)
    tables.floor(floor, options.latency_rate, FLOOR_S)
    lat = phases.latency(ctx, options.latency_rate, options.latency_s)
    tables.paced(
        f"latency at {options.latency_rate:,.0f} events/s for {options.latency_s:.0f}s "
        "(producer → prediction received)",
        lat,
    )
    tables.latency_note()
    clock.lap("latency")

    search = RateSearch(
        worker_rate,
        probe_s=options.probe_s,
        confirm_s=options.confirm_s,
        max_probes=options.max_probes,
    )
    tables.console.print("sustainable rate: probes from 30% of the batch figure upward")
    probes = phases.sustainable(ctx, search, tables.probe)
    sustainable = float(search.result or 0.0)
    tables.sustainable(sustainable, worker_rate, probes)
    clock.lap("sustainable")

    mixed = phases.mixed(ctx, options.latency_rate, options.outcome_rate, options.mixed_s)
    tables.mixed(mixed)
    clock.lap("mixed")
    backlog = phases.backlog(
        ctx, options.backlog, options.latency_rate, options.backlog_min_s, options.backlog_max_s
    )
    tables.backlog(backlog)
    clock.lap("backlog")
    result = _result(ctx, history, served, rows, lat, sustainable, probes, mixed, backlog)
    result["harness_floor_ms"] = {"p50": floor.p50, "p99": floor.p99, "max": floor.max}
    result["phase_s"] = took
    return result


class _Lap:
    """Seconds each phase took (set-up and waits included), for the JSON."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into, self.t = into, time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.into[name], self.t = round(now - self.t, 1), now


def _throughput(ctx: Context, options: Options, history_end_ms: int) -> list[ceilings.Throughput]:
    """Stop the worker, preload, time the ceilings on the preload, restart the worker on it."""
    settings = ctx.settings
    ctx.worker.stop()
    topic = settings.topic("transactions")
    start = high_watermarks(settings, topic)
    predictions_at = high_watermarks(settings, settings.topic("predictions"))
    rate = options.events / PRELOAD_SPAN_S
    messages = ctx.transactions(options.events, rate, history_end_ms + 60_000)
    seconds = produce_all(settings, topic, messages)
    tables.note(f"preloaded {len(messages):,} events in {seconds:.1f}s; worker stopped")
    ids = [m[2] for m in messages]
    rows = [ceilings.raw_consume(settings, start, len(ids))]
    rows.append(ceilings.bare_faust(settings, start, len(ids)))
    quix = ceilings.quix_streams(settings, start, len(ids)) if options.quix else None
    if quix is not None:
        rows.append(quix)
    elif options.quix:
        tables.note("Quix Streams row skipped: quixstreams is not installed (pip install .[bench])")
    ctx.worker.start()
    worker_row, _ = phases.worker_throughput(ctx, ids, predictions_at, 120 + len(ids) / 500)
    rows.append(worker_row)
    return rows


def _result(
    ctx: Context,
    history: History,
    served: Served,
    rows: list[ceilings.Throughput],
    lat: Any,
    sustainable: float,
    probes: list[phases.ProbeRun],
    mixed: phases.Mixed,
    backlog: phases.Backlog,
) -> dict[str, Any]:
    by = {r.key: r.per_s for r in rows}
    return {
        "throughput": {r.key: r.as_dict() for r in rows},
        "throughput_ratios": {
            "worker_vs_faust": ratio(by["worker"], by["faust"]),
            "worker_vs_raw": ratio(by["worker"], by["raw"]),
            "worker_vs_quix": ratio(by["worker"], by.get("quix", math.nan)),
        },
        "latency_ms": {
            "p50": lat.latency.p50,
            "p99": lat.latency.p99,
            "max": lat.latency.max,
            "rate": lat.rate,
        },
        "latency_detail": lat.as_dict(),
        "sustainable_rate": sustainable,
        "sustainable_probes": [
            {"confirm": p.probe.confirm, "held": p.held, "why": p.why, **p.result.as_dict()}
            for p in probes
        ],
        "mixed": mixed.as_dict(),
        "mixed_detail": mixed.detail(),
        "backlog": backlog.as_dict(),
        "backlog_detail": backlog.detail(),
        "model_version": served.version,
        "model_versions": dict(ctx.versions),
        "served_by_none": served_none(ctx.versions),
        "champion": {
            "history_transactions": history.transactions,
            "history_frauds": history.frauds,
            "history_outcomes": history.outcomes,
            "rows_train": served.rows_train,
            "holdout_auc": served.holdout_auc,
            "retrain_s": round(served.retrain_s, 1),
        },
    }


def _fail_on_errors(result: dict[str, Any]) -> None:
    """Errors, not misses: a timed prediction served by no model, a failed retrain."""
    none = result["served_by_none"]
    if none:
        raise StreamlearnError(
            f"bench: {none:,} timed predictions were served by model 'none' although "
            f"{result['model_version']} was published (see the worker log)"
        )
    retrain = result["mixed_detail"]["retrain"]
    if retrain.get("exit") != 0:
        raise StreamlearnError(
            f"bench: the retrain during the mixed load failed (exit {retrain.get('exit')}): "
            f"{retrain.get('said')}"
        )


def _clean(value: Any) -> Any:
    """JSON proper: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
