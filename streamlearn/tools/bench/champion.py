"""A real champion for the bench: simulated history through the worker, `retrain` on it, and
the worker serving the model it published (as `make demo` starts)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from streamlearn.batch_retrain.pipeline import run_retrain
from streamlearn.foundation.clock import DAY_MS, HOUR_MS
from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store.access import worker_store
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import OutcomeDelays, Simulator
from streamlearn.tools.simulate.replay import Replayer

# Labels come 1-3 hours (legit) and 1-14 hours (fraud) after the payment in event time, so a
# maturity of 6 hours leaves most of two days of history labelled.
LABEL_UNIT_S = 3600.0
MATURITY_S = 6 * 3600.0
TX_PER_CARD_DAY = 3.0
FRAUD_RATE = 0.01  # enough fraud in a short history for every split of the training set


@dataclass(frozen=True, slots=True)
class History:
    transactions: int
    frauds: int
    outcomes: int
    start_ms: int
    end_ms: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Served:
    version: str
    status: str
    rows_train: int
    holdout_auc: float
    retrain_s: float
    served_after_s: float


def simulator(events: int, days: float, seed: int) -> Simulator:
    """A population whose cards keep their natural pace over `days` for about `events`."""
    cards = max(500, int(events / (days * TX_PER_CARD_DAY)))
    return Simulator(
        seed=seed,
        cards=cards,
        merchants=max(100, cards // 10),
        fraud_rate=FRAUD_RATE,
        delays=OutcomeDelays.scaled(LABEL_UNIT_S),
    )


def publish_history(
    settings: Settings, sim: Simulator, worker: WorkerProcess, days: float, end_ms: int
) -> History:
    """Replay `days` of history up to end_ms with every outcome known by then; wait until the
    worker has scored and stored all of it."""
    t0 = time.monotonic()
    start_ms = end_ms - int(days * DAY_MS)
    replay = Replayer(settings)
    counts = replay.publish(sim.events(start_ms, until_ms=end_ms))
    replay.release_until(end_ms)
    timeout = 120 + counts.transactions / 200
    worker.wait_for("transactions", counts.transactions, timeout=timeout)
    worker.wait_for("outcomes", counts.outcomes, timeout=timeout)
    return History(
        counts.transactions,
        counts.frauds,
        counts.outcomes,
        start_ms,
        end_ms,
        time.monotonic() - t0,
    )


def train_and_serve(settings: Settings, worker: WorkerProcess, timeout_s: float = 90) -> Served:
    """`retrain` through the worker that owns the store; wait until it serves the model."""
    store = worker_store(settings)
    t0 = time.monotonic()
    r = run_retrain(settings, store, maturity_s=MATURITY_S, reason="bench")
    retrain_s = time.monotonic() - t0
    if not r.published:
        raise StreamlearnError(
            f"bench: the first model {r.version} was not published ({r.status}: "
            f"{r.decision.reason})"
        )
    deadline = time.monotonic() + timeout_s
    t1 = time.monotonic()
    while time.monotonic() < deadline:
        if worker.status().get("model_version") == r.version:
            return Served(
                r.version,
                r.status,
                int(r.rows.get("rows_train", 0)),
                float(r.metrics.get("holdout_auc", float("nan"))),
                retrain_s,
                time.monotonic() - t1,
            )
        time.sleep(0.25)
    raise StreamlearnError(
        f"bench: the worker did not serve model {r.version} within {timeout_s:.0f}s "
        f"(it serves {worker.status().get('model_version')})"
    )


def history_window(now_ms: int) -> int:
    """Where history ends: an hour before now, so the preload fits between it and now."""
    return now_ms - HOUR_MS
