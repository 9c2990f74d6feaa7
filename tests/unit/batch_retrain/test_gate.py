"""The evaluation gate and the metrics it compares: pure, no store, no broker."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamlearn.batch_retrain.gate import GateConfig, judge
from streamlearn.batch_retrain.metrics import (
    DAY_MS,
    evaluate,
    expected_calibration_error,
    paired_gain_se,
    precision_at_k_per_day,
)

CHAMPION = {
    "holdout_ap": 0.50,
    "holdout_auc": 0.90,
    "holdout_p_at_k_day": 0.40,
    "holdout_logloss": 0.030,
    "holdout_ece": 0.010,
}


def challenger(**changes: float) -> dict[str, float]:
    return {**CHAMPION, **{f"holdout_{k}": v for k, v in changes.items()}}


def test_a_better_challenger_passes_with_every_metric_kept():
    d = judge(challenger(ap=0.55, auc=0.91), CHAMPION, champion_version="v1", compared_rows=900)
    assert d.promote
    assert "ap 0.5500" in d.reason and "v1" in d.reason and "900 rows" in d.reason
    assert d.challenger_metrics["holdout_ap"] == 0.55
    assert d.champion_metrics == CHAMPION and d.compared_rows == 900


def test_a_worse_challenger_is_rejected_naming_the_primary_metric():
    d = judge(challenger(ap=0.45), CHAMPION, champion_version="v1")
    assert not d.promote
    assert d.reason.startswith("ap 0.4500 vs champion v1 0.5000") and "margin" in d.reason


@pytest.mark.parametrize(
    ("metric", "value"),
    [("auc", 0.85), ("p_at_k_day", 0.30), ("logloss", 0.040), ("ece", 0.030)],
)
def test_a_loss_beyond_tolerance_on_another_metric_rejects(metric, value):
    d = judge(challenger(ap=0.60, **{metric: value}), CHAMPION, champion_version="v1")
    assert not d.promote
    assert d.reason.startswith(f"{metric} ") and "tolerance" in d.reason


def test_tolerance_edges():
    config = GateConfig(margin=0.0, tolerances={"auc": 0.01, "logloss": 0.005})
    # A loss exactly at the tolerance passes; just beyond it does not.
    assert judge(challenger(auc=0.89), CHAMPION, config=config).promote
    assert not judge(challenger(auc=0.8899), CHAMPION, config=config).promote
    # Log loss is better when lower: a rise is the loss.
    assert judge(challenger(logloss=0.035), CHAMPION, config=config).promote
    assert not judge(challenger(logloss=0.0351), CHAMPION, config=config).promote
    assert judge(challenger(logloss=0.001), CHAMPION, config=config).promote
    # Metrics without a tolerance are not judged.
    assert judge(challenger(ece=0.5), CHAMPION, config=config).promote


def test_margin_edges():
    assert judge(challenger(), CHAMPION).promote  # a tie meets a zero margin
    demanding = GateConfig(margin=0.02)
    assert judge(challenger(ap=0.52), CHAMPION, config=demanding).promote
    assert not judge(challenger(ap=0.5199), CHAMPION, config=demanding).promote
    lenient = GateConfig(margin=-0.01)
    assert judge(challenger(ap=0.49), CHAMPION, config=lenient).promote
    primary_auc = GateConfig(primary="auc", margin=0.01, tolerances={"ap": 0.0})
    d = judge(challenger(auc=0.92, ap=0.49), CHAMPION, config=primary_auc)
    assert not d.promote and d.reason.startswith("ap ")


def test_a_loss_within_noise_passes_and_one_beyond_it_is_refused():
    # The figures of one replay's rejected retrain: AP -0.029 (se 0.018), AUC -0.015 (se 0.013).
    noise = {"ap": 0.0184, "auc": 0.0126}
    worse = challenger(ap=0.4713, auc=0.885)
    assert not judge(worse, CHAMPION).promote  # without noise: refused
    d = judge(worse, CHAMPION, noise=noise, champion_version="v1", compared_rows=25_000)
    assert d.promote and "se of the gain 0.0184" in d.reason
    assert d.challenger_metrics["holdout_ap_gain_se"] == 0.0184
    # Beyond 2 se (0.0368 of AP, 0.0252 of AUC) a challenger is refused, and the line says so.
    d = judge(challenger(ap=0.46), CHAMPION, noise=noise)
    assert not d.promote and "below the margin +0.0000 less 2 x se 0.0184" in d.reason
    d = judge(challenger(auc=0.87), CHAMPION, noise=noise)
    assert not d.promote and "tolerance 0.0100 or 2 x se 0.0126" in d.reason
    # noise_z 0 ignores noise; a demanding margin is still demanded, less the noise.
    assert not judge(worse, CHAMPION, noise=noise, config=GateConfig(noise_z=0)).promote
    assert not judge(challenger(), CHAMPION, noise=noise, config=GateConfig(margin=0.1)).promote
    with pytest.raises(ValueError, match="noise_z"):
        GateConfig(noise_z=-1)


def test_paired_bootstrap_noise_shrinks_with_more_frauds():
    rng = np.random.default_rng(1)

    def se(n: int) -> dict[str, float]:
        y = (rng.random(n) < 0.02).astype(int)
        base = y * 1.5 + rng.normal(size=n)
        ours, theirs = base + rng.normal(0, 0.5, n), base + rng.normal(0, 0.5, n)
        return paired_gain_se(y, ours, theirs, reps=100)

    small, large = se(5_000), se(80_000)
    assert 0 < large["ap"] < small["ap"] and 0 < large["auc"] < small["auc"]
    # The same scores differ by nothing, whatever the resample.
    y = np.array([0, 1] * 50)
    s = np.linspace(0, 1, 100)
    assert paired_gain_se(y, s, s, reps=20) == {"ap": 0.0, "auc": 0.0}
    assert all(math.isnan(v) for v in paired_gain_se(np.zeros(5), s[:5], s[:5]).values())


def test_undefined_metrics():
    assert not judge(challenger(ap=math.nan), CHAMPION).promote
    # The champion's undefined AP (no fraud among the rows) leaves the others to decide.
    assert judge(challenger(), {**CHAMPION, "holdout_ap": math.nan}).promote
    d = judge(challenger(auc=math.nan), CHAMPION)
    assert not d.promote and "auc is undefined" in d.reason
    d = judge({}, None, note="no champion published yet")
    assert d.promote and d.reason == "no champion published yet"


def test_unknown_metric_names_are_refused():
    with pytest.raises(ValueError, match="unknown gate metric"):
        GateConfig(primary="f1")
    with pytest.raises(ValueError, match=">= 0"):
        GateConfig(tolerances={"auc": -0.1})


def test_precision_at_k_per_day_pools_each_days_top_alerts():
    days = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.6, 0.5, 0.4])
    y = np.array([1, 0, 0, 1, 0, 0, 1, 1])
    w = np.ones(8)
    # Top 2 per day: day 0 -> (1, 0), day 1 -> (0, 0): 1 hit of 4 alerts.
    assert precision_at_k_per_day(y, score, w, days, 2) == pytest.approx(0.25)
    # A row of weight 3 stands for three alerts: top 4 of day 0 is its first two rows (1 hit
    # of weight 4), of day 1 all four rows (2 hits of 4).
    w2 = np.array([1, 3, 1, 1, 1, 1, 1, 1], dtype=float)
    assert precision_at_k_per_day(y, score, w2, days, 4) == pytest.approx(3 / 8)


def test_expected_calibration_error():
    y = np.array([0, 0, 0, 1] * 25)
    perfect = np.full(100, 0.25)
    assert expected_calibration_error(y, perfect, np.ones(100)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(100, 0.55), np.ones(100)) == pytest.approx(0.3)


def test_evaluate_reports_the_gate_metrics():
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.05).astype(int)
    score = np.clip(0.05 + 0.5 * y + rng.normal(0, 0.1, 2000), 0, 1)
    et = np.arange(2000) * (DAY_MS // 500)
    m = evaluate(y, score, None, et, alerts_per_day=20)
    assert {"ap", "auc", "logloss", "ece", "p_at_k_day"} <= set(m)
    assert m["p_at_k_day"] > 0.9 and 0 <= m["ece"] < 0.2
    assert "p_at_k_day" not in evaluate(y, score)
