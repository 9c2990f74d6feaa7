"""Online AP and daily-alert precision against straightforward batch references (no network)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from streamlearn.batch_retrain import metrics as batch_metrics
from streamlearn.learners.metrics import DailyAlerts, Scorecard, ScorerMetrics
from streamlearn.learners.ranking import ALERTS_PER_DAY, DAY_MS


def reference_ap(y: np.ndarray, s: np.ndarray) -> float:
    """AP written out: mean over the frauds of the precision at each fraud's rank (no ties)."""
    order = np.argsort(-s, kind="stable")
    hits = np.cumsum(y[order])
    ranks = np.arange(1, len(y) + 1)
    return float((hits / ranks)[y[order] == 1].mean())


def reference_p_at_k_day(y: np.ndarray, s: np.ndarray, days: np.ndarray, k: int) -> float:
    """Pool each day's k highest scores and count the frauds among them."""
    hits = alerts = 0
    for d in np.unique(days):
        top = np.argsort(-s[days == d], kind="stable")[:k]
        hits += int(y[days == d][top].sum())
        alerts += len(top)
    return hits / alerts


def stream(n: int, seed: int, rate: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, continuous scores with some signal, and event times over ~6 days."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(-3, 1.2, n) + 2.0 * y)))
    t = np.sort(rng.integers(0, 6 * DAY_MS, n))
    return y, s, t


def test_k_is_the_gates() -> None:
    assert ScorerMetrics().alerts_per_day == ALERTS_PER_DAY == batch_metrics.ALERTS_PER_DAY


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rolling_and_cumulative_ap_match_the_reference(seed: int) -> None:
    y, s, t = stream(6000, seed)
    m = ScorerMetrics(window=1000)
    # Labels arrive out of event order: the AP of what was labeled does not depend on it.
    for i in np.random.default_rng(seed).permutation(len(y)):
        m.update(bool(y[i]), float(s[i]), int(t[i]))
    snap = m.snapshot()
    last = list(m.recent)
    ly = np.array([f for _, f in last], dtype=int)
    ls = np.array([x for x, _ in last])
    assert snap["ap_rolling"] == pytest.approx(reference_ap(ly, ls), abs=1e-9)
    # Cumulative AP bins logit(score) by 0.01: equal to the exact AP up to the binning.
    assert snap["ap"] == pytest.approx(reference_ap(y, s), abs=2e-3)
    assert snap["ap"] == pytest.approx(average_precision_score(y, s), abs=2e-3)


@pytest.mark.parametrize("k", [1, 5, ALERTS_PER_DAY])
def test_daily_alert_precision_matches_the_batch_gate(k: int) -> None:
    y, s, t = stream(5000, 7, rate=0.1)
    m = ScorerMetrics(alerts_per_day=k, rolling_days=2)
    for i in np.random.default_rng(k).permutation(len(y)):
        m.update(bool(y[i]), float(s[i]), int(t[i]))
    days = t // DAY_MS
    snap = m.snapshot()
    expected = reference_p_at_k_day(y, s, days, k)
    assert snap["p_at_k_day"] == pytest.approx(expected)
    assert snap["p_at_k_day"] == pytest.approx(
        batch_metrics.precision_at_k_per_day(y, s, np.ones(len(y)), days, k)
    )
    recent = days >= days.max() - 1
    assert snap["p_at_k_day_rolling"] == pytest.approx(
        reference_p_at_k_day(y[recent], s[recent], days[recent], k)
    )


def test_old_days_fold_into_totals_without_changing_the_pooled_precision(monkeypatch) -> None:
    import streamlearn.learners.metrics as lm

    y, s, t = stream(3000, 9, rate=0.1)
    monkeypatch.setattr(lm, "MAX_DAYS", 2)
    alerts = DailyAlerts(k=10)
    for yi, si, ti in zip(y, s, t, strict=True):  # in event order: a folded day is complete
        alerts.add(int(ti) // DAY_MS, float(si), bool(yi))
    assert len(alerts.days) == 2 and alerts.folded_alerts == 40
    assert alerts.precision() == pytest.approx(reference_p_at_k_day(y, s, t // DAY_MS, 10))


def test_undefined_until_both_classes_and_no_day_without_event_time() -> None:
    m = ScorerMetrics()
    snap = m.snapshot()
    assert all(math.isnan(snap[c]) for c in ("ap", "ap_rolling", "p_at_k_day"))
    m.update(False, 0.2, 0)
    m.update(False, 0.3)  # no event time: counts for AP, not for a day's alerts
    assert math.isnan(m.snapshot()["ap"]) and m.snapshot()["p_at_k_day"] == 0.0
    m.update(True, 0.9, 0)
    snap = m.snapshot()
    assert snap["ap"] == snap["ap_rolling"] == 1.0 and snap["p_at_k_day"] == 0.5


def test_scorecard_caches_a_status_snapshot_and_pickles_without_it() -> None:
    card = Scorecard(window=100)
    card.update(True, {"served": 0.9}, 0)
    card.update(False, {"served": 0.1}, 0)
    first = card.snapshot(max_age_s=60)
    card.update(True, {"served": 0.05}, 0)
    assert card.snapshot(max_age_s=60) is first  # a status poll within the age: no recompute
    assert card.snapshot()["served"]["labels"] == 3.0
    again = pickle.loads(pickle.dumps(card))
    assert "_cached" not in again.__dict__ and again.snapshot()["served"]["labels"] == 3.0


def test_a_checkpointed_scorer_without_the_new_state_restores() -> None:
    m = ScorerMetrics(window=50)
    m.update(True, 0.8, 0)
    state = {
        k: v
        for k, v in m.__dict__.items()
        if k not in ("recent", "ap_pos", "ap_neg", "alerts", "alerts_per_day", "rolling_days")
    }
    old = ScorerMetrics.__new__(ScorerMetrics)
    old.__setstate__(state)
    old.update(False, 0.1, 0)
    snap = old.snapshot()
    assert snap["labels"] == 2.0 and snap["alerts_per_day"] == ALERTS_PER_DAY
