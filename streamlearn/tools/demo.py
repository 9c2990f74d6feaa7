"""`streamlearn demo`: the whole pipeline in one command, on the embedded default.

Starts the local broker if needed and a worker, replays simulated history fast, trains and
publishes a first model, then replays the last days paced as live traffic while the model
is retrained on a timer, with a live view, a summary and the report (charts of the run) at the
end.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from streamlearn.batch_retrain.pipeline import run_retrain
from streamlearn.foundation.errors import NotEnoughData, StreamlearnError
from streamlearn.foundation.kafka import ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import redact_url
from streamlearn.foundation.store.access import RemoteStore, open_store, worker_store
from streamlearn.report import build_report
from streamlearn.tools import broker
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import OutcomeDelays, Simulator
from streamlearn.tools.simulate.replay import Replayer

console = Console()
DAY_MS = 86_400_000
TX_PER_CARD_DAY = 3.0
MATURITY_S = 12 * 3600
# Demo-sized retrains: every fraud and a weighted sample of legit up to 20,000 rows, on one
# thread (LightGBM's threads spin on a busy 2-core machine and bill CPU for it). A model then
# costs a fraction of a CPU second to train, and the inference it serves passes that during
# the demo: the report's cost chart shows the crossing.
TRAIN_MAX_ROWS = 20_000


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _view(
    status: dict[str, Any],
    counts: Any,
    phase: str,
    elapsed: float,
    retrains: list,
    learned_before: int = 0,
) -> Group:
    top = Table.grid(padding=(0, 2))
    lat = status.get("latency") or {}
    rows = [
        ("phase", phase),
        ("elapsed", f"{elapsed:.0f}s"),
        ("sent / scored", f"{counts.transactions:,} / {status.get('transactions', 0):,}"),
        ("events/s", _fmt(status.get("events_per_s"), 0)),
        ("latency p50 / p99", f"{_fmt(lat.get('p50_ms'), 0)} / {_fmt(lat.get('p99_ms'), 0)} ms"),
        ("model", f"{status.get('model_version')} ({status.get('model_swaps', 0)} swaps)"),
        (
            "outcomes learned",
            f"{status.get('learned', 0) - learned_before:,} of {counts.outcomes:,} sent",
        ),
        ("dead letters", str(sum((status.get("dead_letters") or {}).values()))),
        ("retrains", ", ".join(retrains[-3:]) or "-"),
    ]
    for k, v in rows:
        top.add_row(f"[bold]{k}[/]", v)
    return Group(top, _metrics_table(status))


def _metrics_table(status: dict[str, Any]) -> Table:
    t = Table(title="online metrics at label time (scores as served)")
    t.add_column("scorer", no_wrap=True)  # never cut to "river_…": the name is the point
    columns = ("labels", "frauds", "AUC (last 5k)", "AUC (all)", "AP (last 5k)")
    for col in (*columns, "p@k/day (7 days)", "log loss"):
        t.add_column(col)
    for name, m in (status.get("online_metrics") or {}).items():
        t.add_row(
            name.removeprefix("river_"),
            _fmt(int(m.get("labels") or 0)),
            _fmt(int(m.get("positives") or 0)),
            _fmt(m.get("auc_rolling")),
            _fmt(m.get("auc")),
            _fmt(m.get("ap_rolling")),
            _fmt(m.get("p_at_k_day_rolling")),
            _fmt(m.get("logloss")),
        )
    return t


def run_demo(
    settings: Settings,
    *,
    duration_s: float = 120.0,
    rate: float = 300.0,
    backfill_days: float = 3.0,
    live_days: float = 1.0,
    retrain_every_s: float = 40.0,
    drift_at: float | None = None,
) -> dict[str, Any]:
    """Run the demo; returns the final worker status."""
    started_broker = not broker.is_running(settings)
    console.print(f"[bold]1/4[/] Kafka: {broker.up(settings)}")
    ensure_topics(settings)
    # Cards keep their natural pace (3 payments a day): the live phase replays `live_days`
    # of event time in `duration_s` of wall time at `rate` events/s.
    cards = max(500, int(rate * duration_s / (live_days * TX_PER_CARD_DAY)))
    sim = Simulator(
        seed=int(time.time()) % 100_000,
        cards=cards,
        merchants=max(200, cards // 10),
        delays=OutcomeDelays.scaled(3 * 3600),
    )
    now = int(time.time() * 1000)
    history_start = now - int((backfill_days + live_days) * DAY_MS)
    live_start = now - int(live_days * DAY_MS)
    if drift_at is not None:
        sim.set_drift(time_ms=live_start + int(drift_at * live_days * DAY_MS))
    replay = Replayer(settings)
    worker = WorkerProcess(settings, settings.state_dir / "demo-worker.log")
    retrains: list[str] = []
    learned_before = 0
    try:
        worker.start()
        first = worker.status()
        # A rerun in the same state dir resumes the learners from the last run's checkpoint:
        # their counters continue, so this run's figures are counted from here.
        learned_before = int(first.get("learned") or 0)
        if (first.get("checkpoint") or {}).get("restored"):
            console.print(
                f"      learners resumed from the checkpoint of an earlier run in "
                f"{settings.state_dir} (online metrics include it; another "
                "STREAMLEARN_STATE_DIR starts afresh)"
            )
        console.print(
            f"[bold]2/4[/] worker started; replaying {backfill_days:g} days of history "
            f"of {cards:,} cards"
        )
        store = worker_store(settings)
        # The first model is trained a day before the live phase, and serves that last day of
        # history: scoring it costs the model more CPU than its training (the report shows it).
        first_model_at = max(history_start + DAY_MS // 2, live_start - DAY_MS)
        result = _history(
            settings, store, replay, worker, sim, (history_start, first_model_at, live_start)
        )
        retrains.append(result)

        console.print(
            f"[bold]4/4[/] live traffic for {duration_s:.0f}s at {rate:g} events/s (Ctrl-C stops)"
        )
        stop = threading.Event()
        live = threading.Thread(
            target=replay.publish,
            args=(sim.events(live_start, until_ms=now),),
            kwargs={"rate": rate, "stop": stop},
            daemon=True,
        )
        live.start()
        t_live = time.monotonic()
        next_retrain = t_live + retrain_every_s
        retrain_thread: threading.Thread | None = None
        status: dict[str, Any] = {}
        with Live(console=console, refresh_per_second=2, transient=False) as view:
            while time.monotonic() - t_live < duration_s and live.is_alive():
                with contextlib.suppress(OSError):
                    status = worker.status()
                elapsed = time.monotonic() - t_live
                view.update(_view(status, replay.counts, "live", elapsed, retrains, learned_before))
                if time.monotonic() >= next_retrain and (
                    retrain_thread is None or not retrain_thread.is_alive()
                ):
                    retrain_thread = threading.Thread(
                        target=lambda: retrains.append(
                            _retrain(settings, store, MATURITY_S, "schedule")
                        ),
                        daemon=True,
                    )
                    retrain_thread.start()
                    next_retrain = time.monotonic() + retrain_every_s
                time.sleep(0.5)
            stop.set()
            live.join(timeout=30)
            if retrain_thread is not None:
                retrain_thread.join(timeout=120)
            status = worker.status()
            elapsed = time.monotonic() - t_live
            view.update(_view(status, replay.counts, "done", elapsed, retrains, learned_before))
    except KeyboardInterrupt:
        console.print("interrupted")
        status = {}
    finally:
        worker.stop()  # its last inference cost and online metrics are written as it stops
        if started_broker:
            broker.down(settings)
    _summary(status, replay.counts, retrains, learned_before)
    if status:
        console.print(f"Report of the run (drift, retrains, cost): {_report(settings)}")
    return status


def _report(settings: Settings) -> Path:
    """The report (streamlearn report) of everything the demo's worker stored."""
    store = open_store(settings, readonly=True)
    try:
        out = settings.state_dir / "report"
        return build_report(store.query_df, out, None, redact_url(settings.store_url))
    finally:
        store.close()


def _history(
    settings: Settings,
    store: RemoteStore,
    replay: Replayer,
    worker: WorkerProcess,
    sim: Simulator,
    times: tuple[int, int, int],
) -> str:
    """History replayed fast up to the first model, the first model, then the rest of history
    scored by it; what the first retrain did."""
    start, first_model_at, live_start = times
    t0 = time.monotonic()
    counts = replay.publish(sim.events(start, until_ms=first_model_at))
    replay.release_until(first_model_at)
    worker.wait_for("transactions", counts.transactions, timeout=600)
    result = _retrain(settings, store, MATURITY_S, "initial")
    console.print(f"[bold]3/4[/] first model: {result}")
    version = result.split(" ", 1)[0]
    if " champion " in result:
        with contextlib.suppress(StreamlearnError):  # a slow swap: the rest is scored anyway
            _wait_until(lambda: worker.status().get("model_version") == version, 60)
    counts = replay.publish(sim.events(first_model_at, until_ms=live_start))
    replay.release_until(live_start)
    worker.wait_for("transactions", counts.transactions, timeout=600)
    console.print(
        f"      history: {counts.transactions:,} transactions ({counts.frauds:,} fraud), "
        f"{counts.outcomes:,} outcomes in {time.monotonic() - t0:.0f}s, the last "
        f"{(live_start - first_model_at) / DAY_MS:g} day scored by the first model"
    )
    return result


def _wait_until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.3)
    raise StreamlearnError(f"not reached within {timeout:.0f}s")


def _retrain(settings: Settings, store: RemoteStore, maturity_s: float, reason: str) -> str:
    try:
        r = run_retrain(
            settings,
            store,
            maturity_s=maturity_s,
            reason=reason,
            num_threads=1,
            max_rows=TRAIN_MAX_ROWS,
        )
    except NotEnoughData as exc:
        return f"skipped ({exc})"
    except StreamlearnError as exc:
        return f"failed ({exc})"
    return (
        f"{r.version} {r.status} (holdout AUC {_fmt(r.metrics.get('holdout_auc'))}, "
        f"AP {_fmt(r.metrics.get('holdout_ap'))})"
    )


def _summary(
    status: dict[str, Any], counts: Any, retrains: list[str], learned_before: int = 0
) -> None:
    t = Table(title="demo summary")
    t.add_column("figure")
    t.add_column("value")
    lat = status.get("latency") or {}
    for k, v in (
        ("transactions sent", f"{counts.transactions:,} ({counts.frauds:,} fraud)"),
        ("transactions scored", _fmt(status.get("transactions"))),
        (
            "outcomes sent / learned",
            f"{counts.outcomes:,} / {_fmt((status.get('learned') or 0) - learned_before)}",
        ),
        ("dead letters", _fmt(sum((status.get("dead_letters") or {}).values()))),
        ("latency p50 / p99 (ms)", f"{_fmt(lat.get('p50_ms'), 0)} / {_fmt(lat.get('p99_ms'), 0)}"),
        ("model serving at the end", _fmt(status.get("model_version"))),
        ("retrains", "\n".join(retrains) or "-"),
    ):
        t.add_row(k, v)
    console.print(t)
    if status.get("online_metrics"):
        console.print(_metrics_table(status))
    console.print(
        "Query the history: streamlearn query "
        '"SELECT model_version, count() FROM streamlearn.transactions GROUP BY 1"'
    )
