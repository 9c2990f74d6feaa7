"""`streamlearn replay`'s run, the only place that knows its order: read the file, plan it in
event time, publish it step by step through a worker of its own (retraining at the planned
points with the production gate), then measure every scorer per event week and write the
results and the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from streamlearn.batch_retrain.pipeline import run_retrain
from streamlearn.foundation.clock import DAY_MS, now_ms
from streamlearn.foundation.errors import ConfigError, NotEnoughData, StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store.access import RemoteStore, worker_store
from streamlearn.tools.replay import schedule
from streamlearn.tools.replay.finish import finish
from streamlearn.tools.replay.options import Plan, ReplayOptions, ReplayProgress, Retrain
from streamlearn.tools.replay.publisher import Publisher
from streamlearn.tools.replay.session import Session, isolated, run_id
from streamlearn.tools.replay.source import History, load

MODEL_SWAP_S = 120.0


def plan(history: History, options: ReplayOptions, wall_ms: int) -> Plan:
    """Outcomes, retrain points and steps of the history (pure)."""
    frame = history.frame
    outcomes, not_due = schedule.outcomes(
        frame,
        label_delay_ms=None if options.outcome_time_column else options.label_delay_ms,
        legit_share=options.legit_share,
        seed=options.seed,
        wall_ms=wall_ms,
    )
    times = frame["event_time"].to_numpy()
    first, last = int(times[0]), int(times[-1])
    if schedule.scored_start(first, options.warmup_ms) > last:
        raise ConfigError(
            f"--warmup {options.warmup_ms / DAY_MS:g}d leaves nothing to score: "
            f"{history.path.name} spans {(last - schedule.origin(first)) / DAY_MS:.1f} days"
        )
    points = schedule.retrain_points(first, last, options.warmup_ms, options.retrain_every_ms)
    steps = schedule.steps(
        times,
        outcomes["event_time"].to_numpy(),
        options.step_ms,
        points,
        outcomes["txn_time"].to_numpy(),
    )
    return Plan(outcomes, not_due, points, steps, schedule.scored_start(first, options.warmup_ms))


def run_replay(
    settings: Settings,
    options: ReplayOptions,
    on_progress: Callable[[ReplayProgress], None] | None = None,
) -> dict[str, Any]:
    """Replay the file end to end; its summary (what finish() wrote and measured)."""
    started = time.perf_counter()
    wall = now_ms()
    notify = on_progress or (lambda _p: None)
    history = load(
        options.file,
        options.mapping,
        outcome_time_column=options.outcome_time_column,
        wall_ms=wall,
    )
    if history.frame.empty:
        raise NotEnoughData(f"{options.file}: no row the worker would accept ({history.refused})")
    the_plan = plan(history, options, wall)
    name = run_id(wall)
    times = history.frame["event_time"]
    progress = ReplayProgress(name, "starting", int(times.iloc[0]), int(times.iloc[-1]))
    notify(progress)
    replay_settings = isolated(settings, options.out_dir / "state", name, web_port=options.web_port)
    with Session(replay_settings, keep_topics=options.keep_topics) as session:
        publish(session, history, the_plan, options, progress, notify)
        progress.phase = "measuring"
        notify(progress)
        return finish(session, history, the_plan, options, progress, started)


def publish(
    session: Session,
    history: History,
    the_plan: Plan,
    options: ReplayOptions,
    progress: ReplayProgress,
    notify: Callable[[ReplayProgress], None],
) -> None:
    """Every step: its transactions; its outcomes (once their transactions are scored); both
    scored and stored before the next step; then its retrain, swapped in."""
    settings = session.settings
    store = worker_store(settings)
    publisher = Publisher(settings)
    frame, outcomes = history.frame, the_plan.outcomes
    progress.phase = "replaying"
    t0 = time.perf_counter()
    retraining = 0.0
    for step in the_plan.steps:
        due = outcomes.iloc[step.out_from : step.out_to]
        if step.txn_to > step.txn_from:
            publisher.publish_transactions(frame.iloc[step.txn_from : step.txn_to])
            publisher.flush()
            if step.own_outcomes:
                session.wait_for({"transactions": publisher.transactions}, options.stall_s)
        if len(due):
            publisher.publish_outcomes(due)
            publisher.flush()
        status = session.wait_for(
            {"transactions": publisher.transactions, "outcomes": publisher.outcomes},
            options.stall_s,
        )
        if step.retrain:
            t1 = time.perf_counter()
            progress.retrains.append(
                retrain(session, store, step.end - 1, options.maturity_s(settings), progress)
            )
            retraining += time.perf_counter() - t1
            status = session.status()
        progress.event_ms = step.end
        progress.transactions, progress.outcomes = publisher.transactions, publisher.outcomes
        progress.scored = int(status.get("transactions") or 0)
        progress.model_version = str(status.get("model_version"))
        notify(progress)
    progress.timings |= {
        "publishing_s": time.perf_counter() - t0 - retraining,
        "retraining_s": retraining,
    }


def retrain(
    session: Session, store: RemoteStore, as_of: int, maturity_s: float, progress: ReplayProgress
) -> Retrain:
    """run_retrain as production runs it, its data clock the replay's; once the gate promotes
    the model, wait until the worker serves it (what follows is scored by it)."""
    reason = "replay: first champion" if not progress.retrains else "replay: schedule"
    try:
        result = run_retrain(
            session.settings, store, as_of_ms=as_of, maturity_s=maturity_s, reason=reason
        )
    except NotEnoughData as exc:
        return Retrain(as_of, "", "skipped", str(exc))
    status = str(getattr(result.status, "value", result.status))
    if result.published:
        wait_for_model(session, result.version)
    return Retrain(
        as_of,
        result.version,
        status,
        result.decision.reason,
        float(result.metrics.get("holdout_auc", float("nan"))),
        float(result.metrics.get("holdout_ap", float("nan"))),
        int(result.rows.get("rows_train", 0)),
    )


def wait_for_model(session: Session, version: str, timeout: float = MODEL_SWAP_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if session.status().get("model_version") == version:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise StreamlearnError(
        f"the replay's worker did not swap to {version} within {timeout:.0f}s; "
        f"see {session.worker.log_path}"
    )
