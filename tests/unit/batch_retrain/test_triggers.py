from dataclasses import replace

from streamlearn.batch_retrain.triggers import TriggerConfig, TriggerInputs, decide_trigger

CFG = TriggerConfig()
NOW = 10_000_000_000
BASE = TriggerInputs(
    now_ms=NOW,
    last_run_ms=NOW - 2 * 3600 * 1000,
    running=False,
    matured_labels=5000,
    drift_events_since_last_run=0,
    champion_online_auc=0.95,
    champion_online_labels=1000,
)


def decide(**changes):
    return decide_trigger(CFG, replace(BASE, **changes))


def test_nothing_to_do():
    trigger, reason = decide()
    assert trigger is None and "no trigger" in reason


def test_running_blocks_everything():
    assert decide(running=True, drift_events_since_last_run=3) == (None, "a retrain is running")


def test_too_few_matured_labels():
    trigger, reason = decide(matured_labels=999, last_run_ms=None)
    assert trigger is None and "matured labels" in reason


def test_cooldown_blocks_drift():
    trigger, reason = decide(last_run_ms=NOW - 60_000, drift_events_since_last_run=1)
    assert trigger is None and "cool-down" in reason


def test_drift_wins_over_metric_and_schedule():
    trigger, _ = decide(
        drift_events_since_last_run=2, champion_online_auc=0.5, last_run_ms=NOW - 10**9
    )
    assert trigger == "drift"


def test_metric_below_floor():
    trigger, reason = decide(champion_online_auc=0.7)
    assert trigger == "metric" and "0.700" in reason


def test_metric_ignored_with_too_few_labels_or_missing():
    assert decide(champion_online_auc=0.7, champion_online_labels=499)[0] is None
    assert decide(champion_online_auc=None)[0] is None
    assert decide(champion_online_auc=float("nan"))[0] is None


def test_schedule_elapsed():
    assert decide(last_run_ms=NOW - 86_400_000)[0] == "schedule"


def test_never_run_is_scheduled():
    trigger, reason = decide(last_run_ms=None)
    assert trigger == "schedule" and "no retrain" in reason


def test_a_shadow_under_live_comparison_blocks_retraining():
    trigger, reason = decide(shadow_pending="v2", drift_events_since_last_run=3)
    assert trigger is None and reason == "shadow v2 is under live comparison"


def test_the_drift_reason_names_what_drifted():
    trigger, reason = decide(drift_events_since_last_run=2, drift_subjects=("data amount",))
    assert trigger == "drift" and reason.endswith("(data amount)")
