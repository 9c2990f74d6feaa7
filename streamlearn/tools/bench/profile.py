"""`make profile`: the bench's phases against a worker with the loop-stall monitor on; per phase
one py-spy flame graph, the stall table and the latency, written to --out (SVGs, summary.md,
summary.json). About 5 minutes; --quick about 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from streamlearn.foundation.clock import now_ms
from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.kafka import ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.tools import broker
from streamlearn.tools.bench import phases, tables
from streamlearn.tools.bench.champion import (
    history_window,
    publish_history,
    simulator,
    train_and_serve,
)
from streamlearn.tools.bench.options import Options
from streamlearn.tools.bench.paced import Context
from streamlearn.tools.bench.profile_summary import PhaseRun, markdown, summary
from streamlearn.tools.bench.pyspy import RATE, FlameRecorder, py_spy
from streamlearn.tools.bench.run import bench_settings
from streamlearn.tools.processes import WorkerProcess

STALL_MS = 5.0  # a callback longer than this is a stall: at 1,000 events/s a p99 of 25 ms
# leaves room for a few of them, not for one of 25 ms


def check(options: Options) -> None:
    """Outcomes go only to transactions scored earlier in the run: enough of them?"""
    scored = int(options.latency_rate * (options.latency_s + options.mixed_s))
    if options.outcomes_needed() > scored:
        raise StreamlearnError(
            f"profile: the mixed and backlog phases need {options.outcomes_needed():,} scored "
            f"transactions but only {scored:,} are scored before them"
        )


def run_profile(
    base: Settings, options: Options, out: Path, stall_ms: float = STALL_MS, rate: int = RATE
) -> dict[str, Any]:
    """Every phase on a fresh topic prefix and store; the worker and a broker this started are
    stopped whatever happens; the summary is written even for a run cut short."""
    check(options)
    py_spy()  # missing: one line now, not after the set-up
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(base, options).with_overrides(
        worker_id="profile", stall_log_ms=stall_ms, stall_log_path=out / "worker-stalls.json"
    )
    started_broker = not broker.is_running(base)
    tables.console.print(
        f"profile{' --quick' if options.quick else ''}: broker {broker.up(base)}; "
        f"state in {settings.state_dir}; results in {out}"
    )
    run = _run_facts(settings, options, stall_ms, rate)
    worker = WorkerProcess(settings, settings.state_dir / "worker.log")
    ctx = Context(
        settings, worker, simulator(options.history_events, options.history_days, options.seed)
    )
    runs: list[PhaseRun] = []
    try:
        ensure_topics(settings)
        worker.start()
        _phases(ctx, options, out, rate, runs)
    except StreamlearnError as exc:
        run["error"] = str(exc)
        raise
    finally:
        worker.stop()
        if started_broker:
            broker.down(base)
        body = _write(out, runs, settings.stall_log_path, run)
    return body


def _run_facts(settings: Settings, options: Options, stall_ms: float, rate: int) -> dict:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": options.quick,
        "stall_ms": stall_ms,
        "py_spy_rate": rate,
        "load_average": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "worker_log": str(settings.state_dir / "worker.log"),
        "options": options.as_dict(),
    }


def _phases(ctx: Context, options: Options, out: Path, rate: int, runs: list[PhaseRun]) -> None:
    pid = ctx.worker.proc.pid if ctx.worker.proc is not None else 0
    settings, lat_rate = ctx.settings, options.latency_rate

    def phase(name: str, what: str) -> Any:
        return _phase(pid, out, rate, runs, name, what)

    with phase("champion", "history replayed, `retrain`, the model served") as p:
        end_ms = history_window(now_ms())
        history = publish_history(settings, ctx.sim, ctx.worker, options.history_days, end_ms)
        served = train_and_serve(settings, ctx.worker)
        p.extra = {"history_transactions": history.transactions, "model_version": served.version}
    with phase("latency", f"{lat_rate:,.0f} transactions/s for {options.latency_s:.0f} s") as p:
        lat = phases.latency(ctx, lat_rate, options.latency_s)
        p.latency, p.extra = lat.latency, {"sent": lat.sent, "received": lat.received}
    what = (
        f"{lat_rate:,.0f} transactions/s and {options.outcome_rate:,.0f} outcomes/s for "
        f"{options.mixed_s:.0f} s, a retrain, an analyst query every 5 s, /status every 1 s"
    )
    with phase("mixed", what) as p:
        m = phases.mixed(ctx, lat_rate, options.outcome_rate, options.mixed_s)
        p.latency = m.result.latency
        p.extra = {**m.as_dict(), "retrain": m.retrain, "analyst": m.analyst}
    what = f"{options.backlog:,} outcomes at once, scoring at {lat_rate:,.0f}/s"
    with phase("backlog", what) as p:
        b = phases.backlog(
            ctx, options.backlog, lat_rate, options.backlog_min_s, options.backlog_max_s
        )
        p.latency = b.result.latency
        p.extra = {"learned": b.learned, "learned_per_s": round(b.learned_per_s, 1)}


@contextmanager
def _phase(
    pid: int, out: Path, rate: int, runs: list[PhaseRun], name: str, what: str
) -> Iterator[PhaseRun]:
    """py-spy on the worker from the phase's first to its last second, the phase's window."""
    tables.console.print(f"profile: {name}: {what}")
    recorder = FlameRecorder(pid, out / f"{name}.svg", rate).start()
    run = PhaseRun(name, what, time.time(), 0.0)
    try:
        yield run
    finally:
        run.ended_at = time.time()
        run.flame = recorder.stop()
        runs.append(run)
        tables.console.print(
            f"profile: {name} took {run.ended_at - run.started_at:.0f} s; "
            f"flame graph {run.flame.get('svg')} ({run.flame.get('samples')} samples)"
        )


def _write(out: Path, runs: list[PhaseRun], stall_path: Path | None, run: dict) -> dict:
    stall_file = None
    if stall_path is not None and stall_path.exists():
        stall_file = json.loads(stall_path.read_text())
    body = summary(runs, stall_file, run)
    (out / "summary.json").write_text(json.dumps(body, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(body))
    tables.console.print(f"profile: written to {out} (summary.md, summary.json, *.svg)")
    return body


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m streamlearn.tools.bench.profile", description=__doc__
    )
    parser.add_argument("--out", type=Path, default=Path(".streamlearn/profile"))
    parser.add_argument("--quick", action="store_true", help="shorter phases (about 2 min)")
    parser.add_argument(
        "--stall-ms", type=float, default=STALL_MS, help="a callback longer than this is a stall"
    )
    parser.add_argument("--rate", type=int, default=RATE, help="py-spy samples a second")
    args = parser.parse_args(argv)
    if args.stall_ms <= 0 or args.rate <= 0:
        parser.error("--stall-ms and --rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """One line on stderr for an error a user can act on (exit 2), not a traceback."""
    args = parse(argv)
    options = Options.quick_run() if args.quick else Options()
    try:
        run_profile(Settings(), options, args.out, args.stall_ms, args.rate)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(x) for x in error["loc"])
        print(f"profile: invalid setting {where}: {error['msg']}", file=sys.stderr)
        return 2
    except StreamlearnError as exc:
        print(f"profile: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
