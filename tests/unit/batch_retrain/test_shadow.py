"""The live comparison of a shadow model: waits for matured labels, then the gate decides."""

from __future__ import annotations

import numpy as np
import pytest

from streamlearn.batch_retrain.gate import DEFAULT_GATE, GateConfig, gate_config, gate_from_settings
from streamlearn.batch_retrain.shadow import LiveSample, live_verdict
from streamlearn.foundation.clock import DAY_MS
from streamlearn.foundation.settings import Settings


def sample(n: int, *, shadow_noise: float, champion_noise: float, seed: int = 3) -> LiveSample:
    """n transactions, ~5% fraud; each model's score is the label blurred by its own noise."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(np.int8)

    def score(noise: float) -> np.ndarray:
        logit = -3.0 + 3.0 * y + rng.normal(scale=noise, size=n)
        return 1 / (1 + np.exp(-logit))

    et = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * (3 * DAY_MS // n)
    return LiveSample(y, score(shadow_noise), score(champion_noise), et)


def test_waits_until_enough_matured_labels():
    s = sample(500, shadow_noise=0.5, champion_noise=2.0)
    v = live_verdict(s, min_labels=1000, min_positives=10)
    assert v.action == "wait" and v.decision is None
    assert "500 matured shadow-scored transactions" in v.reason and ">= 1000" in v.reason


def test_waits_for_fraud_among_them():
    s = sample(2000, shadow_noise=0.5, champion_noise=2.0)
    v = live_verdict(s, min_labels=1000, min_positives=s.positives + 1)
    assert v.action == "wait"


def test_a_better_shadow_is_promoted_with_both_metric_sets():
    s = sample(4000, shadow_noise=0.5, champion_noise=2.5)
    v = live_verdict(s, min_labels=1000, min_positives=10, champion_version="v1")
    assert v.action == "promote", v.reason
    assert v.reason.startswith("live: ap ") and "v1" in v.reason and "4000 rows" in v.reason
    assert v.rows == 4000 == v.decision.compared_rows
    assert v.shadow_metrics["live_ap"] > v.champion_metrics["live_ap"]
    for key in ("live_auc", "live_logloss", "live_ece", "live_p_at_k_day"):
        assert key in v.shadow_metrics and key in v.champion_metrics


def test_a_worse_shadow_is_rejected_naming_the_metric():
    s = sample(4000, shadow_noise=2.5, champion_noise=0.5)
    v = live_verdict(s, min_labels=1000, min_positives=10, champion_version="v1")
    assert v.action == "reject"
    assert "ap" in v.reason and "below the margin" in v.reason


def test_the_same_rules_as_offline_a_tolerance_decides():
    # The same ranking (equal AP and AUC), but the shadow's scores are inflated: log loss and
    # calibration error rise, so only the tolerances can reject it.
    s = sample(4000, shadow_noise=1.0, champion_noise=1.0)
    worse = LiveSample(s.y, np.sqrt(s.champion), s.champion, s.event_time)
    loose = GateConfig(margin=0.0, tolerances={})
    assert live_verdict(worse, config=loose, min_labels=100).action == "promote"
    v = live_verdict(worse, config=GateConfig(margin=0.0), min_labels=100)
    assert v.action == "reject" and ("logloss" in v.reason or "ece" in v.reason), v.reason


def test_gate_settings_build_the_config():
    assert gate_from_settings(Settings()) == DEFAULT_GATE
    g = gate_from_settings(Settings(gate_primary="auc", gate_margin=0.01, gate_tol_ece=0.2))
    assert g.primary == "auc" and g.margin == 0.01
    assert "auc" not in g.tolerances and g.tolerances["ece"] == 0.2
    assert (
        g.describe()
        == "auc margin +0.01; tolerances p_at_k_day 0.05, logloss 0.005, ece 0.2; noise 2 se"
    )
    with pytest.raises(ValueError, match="gate tolerances"):
        gate_config(tol_auc=-1)


def test_the_readme_shows_the_registry_query_the_tests_run():
    from pathlib import Path

    from streamlearn.batch_retrain.registry import WHO_SCORED_SQL

    readme = (Path(__file__).parents[3] / "README.md").read_text()
    assert WHO_SCORED_SQL in readme
