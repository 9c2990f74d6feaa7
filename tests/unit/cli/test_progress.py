"""Progress of long work: simulate's bars follow the producer's snapshots, and retrain's bar
wraps the pipeline's steps for one run only."""

from __future__ import annotations

from dataclasses import replace

from streamlearn.batch_retrain import pipeline, publish
from streamlearn.cli.retrain import STEPS, StepProgress, step_progress
from streamlearn.cli.simulate import SimulateProgress, summary
from streamlearn.foundation.clock import DAY_MS
from streamlearn.tools.simulate.producer import SimulationReport

START = 1_770_000_000_000


def test_backfill_advances_in_days_of_event_time_then_live_in_transactions() -> None:
    progress = SimulateProgress()
    report = SimulationReport(
        phase="backfill",
        backfill_window=(START, START + 3 * DAY_MS),
        last_event_ms=START + DAY_MS,
        transactions=5000,
    )
    progress.update(report)
    backfill = progress.bar.tasks[0]
    assert backfill.total == 3.0 and backfill.completed == 1.0
    assert "5,000 sent" in backfill.fields["counts"]
    live = replace(
        report,
        phase="live",
        backfill_transactions=15000,
        transactions=15400,
        live_start_ms=START + 3 * DAY_MS,
        live_count=1000,
    )
    progress.update(live)
    assert progress.bar.tasks[0].completed == 3.0  # the backfill is done
    assert progress.bar.tasks[1].total == 1000 and progress.bar.tasks[1].completed == 400
    progress.update(replace(live, phase="done", transactions=16000))
    assert progress.bar.tasks[1].completed == 1000


def test_an_unbounded_live_run_counts_without_an_end() -> None:
    progress = SimulateProgress()
    progress.update(SimulationReport(phase="live", live_start_ms=START, transactions=42))
    assert progress.bar.tasks[0].total is None and progress.bar.tasks[0].completed == 42
    assert "42 transactions (0 fraud)" in summary(SimulationReport(transactions=42))


def test_retrain_steps_are_wrapped_for_the_run_only() -> None:
    originals = [pipeline.build_training_set, pipeline.train, publish.publish_release]
    with step_progress() as progress:
        assert pipeline.train is not originals[1]
        task = progress.bar.tasks[0]
        assert task.total == len(STEPS) and task.completed == 0
    assert [pipeline.build_training_set, pipeline.train, publish.publish_release] == originals


def test_a_wrapped_step_returns_its_result_and_advances_the_bar() -> None:
    progress = StepProgress()
    step = progress.wrap("training LightGBM", lambda x, y=1: x + y, then="registering")
    assert step(2, y=3) == 5
    task = progress.bar.tasks[0]
    assert task.completed == 1 and task.description == "registering"
    progress.finish()
    assert task.completed == len(STEPS)
