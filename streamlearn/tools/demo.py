"""`streamlearn demo`: the whole pipeline in one command, on the embedded default.

Starts the local broker if needed and a worker, replays simulated history fast, trains and
publishes a first model, then replays the last days paced as live traffic while the model
is retrained on a timer, with a live view, a summary and the report (charts of the run) at the
end.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.live import Live

from streamlearn.batch_retrain.pipeline import run_retrain
from streamlearn.foundation.clock import DAY_MS
from streamlearn.foundation.errors import NotEnoughData, StreamlearnError
from streamlearn.foundation.kafka import ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import redact_url
from streamlearn.foundation.store.access import RemoteStore, open_store, worker_store
from streamlearn.report import build_report
from streamlearn.tools import broker
from streamlearn.tools.demo_view import console, fmt, live_view, summary
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import OutcomeDelays, Simulator
from streamlearn.tools.simulate.replay import Replayer

TX_PER_CARD_DAY = 3.0
MATURITY_S = 12 * 3600
# Demo-sized retrains: every fraud and a weighted sample of legit up to 20,000 rows, on one
# thread (LightGBM's threads spin on a busy 2-core machine and bill CPU for it). A model then
# costs a fraction of a CPU second to train, and the inference it serves passes that during
# the demo: the report's cost chart shows the crossing.
TRAIN_MAX_ROWS = 20_000


@dataclass
class _Run:
    """What the demo's phases share: the pieces they drive and the retrains so far."""

    settings: Settings
    replay: Replayer
    worker: WorkerProcess
    sim: Simulator
    retrains: list[str] = field(default_factory=list)
    learned_before: int = 0


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
    sim, cards, (history_start, live_start, now) = _simulator(
        rate, duration_s, backfill_days, live_days, drift_at
    )
    run = _Run(
        settings,
        Replayer(settings),
        WorkerProcess(settings, settings.state_dir / "demo-worker.log"),
        sim,
    )
    status: dict[str, Any] = {}
    try:
        _start_worker(run)
        console.print(
            f"[bold]2/4[/] worker started; replaying {backfill_days:g} days of history "
            f"of {cards:,} cards"
        )
        store = worker_store(settings)
        # The first model is trained a day before the live phase, and serves that last day of
        # history: scoring it costs the model more CPU than its training (the report shows it).
        first_model_at = max(history_start + DAY_MS // 2, live_start - DAY_MS)
        result = _history(
            settings,
            store,
            run.replay,
            run.worker,
            sim,
            (history_start, first_model_at, live_start),
        )
        run.retrains.append(result)
        console.print(
            f"[bold]4/4[/] live traffic for {duration_s:.0f}s at {rate:g} events/s (Ctrl-C stops)"
        )
        status = _live(run, store, (live_start, now), duration_s, rate, retrain_every_s)
    except KeyboardInterrupt:
        console.print("interrupted")
        status = {}
    finally:
        run.worker.stop()  # its last inference cost and online metrics are written as it stops
        if status:  # after Ctrl-C the live thread may still be sending through it
            run.replay.close()
        if started_broker:
            broker.down(settings)
    summary(status, run.replay.counts, run.retrains, run.learned_before)
    if status:
        console.print(f"Report of the run (drift, retrains, cost): {_report(settings)}")
    return status


def _simulator(
    rate: float, duration_s: float, backfill_days: float, live_days: float, drift_at: float | None
) -> tuple[Simulator, int, tuple[int, int, int]]:
    """The demo's simulated cards, and its (history start, live start, now) in ms."""
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
    return sim, cards, (history_start, live_start, now)


def _start_worker(run: _Run) -> None:
    """Start the worker and count this run's figures from where its learners resume."""
    run.worker.start()
    first = run.worker.status()
    # A rerun in the same state dir resumes the learners from the last run's checkpoint:
    # their counters continue, so this run's figures are counted from here.
    run.learned_before = int(first.get("learned") or 0)
    if (first.get("checkpoint") or {}).get("restored"):
        console.print(
            f"      learners resumed from the checkpoint of an earlier run in "
            f"{run.settings.state_dir} (online metrics include it; another "
            "STREAMLEARN_STATE_DIR starts afresh)"
        )


def _live(
    run: _Run,
    store: RemoteStore,
    window: tuple[int, int],
    duration_s: float,
    rate: float,
    retrain_every_s: float,
) -> dict[str, Any]:
    """The live phase: paced traffic, a retrain on a timer, the live view; the final status."""
    replay, worker = run.replay, run.worker
    stop = threading.Event()
    live = threading.Thread(
        target=replay.publish,
        args=(run.sim.events(window[0], until_ms=window[1]),),
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
            view.update(
                live_view(status, replay.counts, "live", elapsed, run.retrains, run.learned_before)
            )
            if time.monotonic() >= next_retrain and (
                retrain_thread is None or not retrain_thread.is_alive()
            ):
                retrain_thread = threading.Thread(
                    target=lambda: run.retrains.append(
                        _retrain(run.settings, store, MATURITY_S, "schedule")
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
        # The summary counts what the worker stored of everything sent: let it catch up first.
        with contextlib.suppress(StreamlearnError):
            _wait_until(lambda: worker.status()["transactions"] >= replay.counts.transactions, 30)
        status = worker.status()
        elapsed = time.monotonic() - t_live
        view.update(
            live_view(status, replay.counts, "done", elapsed, run.retrains, run.learned_before)
        )
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
        f"{r.version} {r.status} (holdout AUC {fmt(r.metrics.get('holdout_auc'))}, "
        f"AP {fmt(r.metrics.get('holdout_ap'))})"
    )
