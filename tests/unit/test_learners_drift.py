"""Drift detectors: the features that moved are named, ADWIN fires on a rise, cooldown holds."""

from __future__ import annotations

import numpy as np
import pytest

from streamlearn.learners.drift import (
    ConceptDrift,
    DataDrift,
    ReferenceBins,
    ScoreDrift,
    bins_from_record,
    bins_to_record,
    psi,
    reference_bins,
)

NAMES = ("amount", "hour", "channel", "steady")


def data(n: int, seed: int, drifted: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.0 + (0.7 if drifted else 0.0), 1.0, size=n)
    hour = rng.integers(0, 24, size=n).astype(float)
    channel = rng.choice([0.0, 1.0, 2.0], p=[0.2, 0.3, 0.5] if drifted else [0.6, 0.3, 0.1], size=n)
    steady = rng.normal(size=n)
    return np.column_stack([amount, hour, channel, steady])


def test_reference_bins_are_quantiles_with_ties_merged() -> None:
    ref = reference_bins(data(10_000, 1), NAMES)
    assert len(ref["amount"].edges) == 9
    assert np.allclose(ref["amount"].proportions, 0.1, atol=0.01)
    assert len(ref["channel"].edges) <= 2
    assert abs(ref["channel"].proportions.sum() - 1.0) < 1e-9
    assert psi(ref["steady"].proportions, ref["steady"].proportions) == 0.0


def test_data_drift_names_the_moved_features_once_per_cooldown() -> None:
    ref = reference_bins(data(20_000, 1), NAMES)
    monitor = DataDrift(NAMES, ref, window=5000, check_every=1000, cooldown_ms=60_000)
    events = []
    for i in range(10):
        events += monitor.update(data(500, 10 + i), time_ms=i * 1000)
    assert events == []
    assert max(monitor.last_psi.values()) < 0.05
    for i in range(30):
        events += monitor.update(data(500, 100 + i, drifted=True), time_ms=20_000 + i * 1000)
    assert {e.subject for e in events} == {"amount", "channel"}
    assert all(e.kind == "data" and e.statistic > e.threshold == 0.2 for e in events)
    assert len(events) == 2  # cooldown: one event per feature within the minute


def test_data_drift_window_counts_match_a_recount() -> None:
    ref = reference_bins(data(5000, 1), NAMES)
    monitor = DataDrift(NAMES, ref, window=1000, check_every=10**9)
    batches = [data(n, 50 + n) for n in (300, 900, 2500, 10, 700)]
    for batch in batches:
        monitor.update(batch, 0)
    recent = np.vstack(batches)[-1000:]
    expected = DataDrift(NAMES, ref, window=1000)._bin(recent)
    for k in range(len(NAMES)):
        counts = np.bincount(expected[:, k], minlength=monitor._counts.shape[1])
        assert np.array_equal(monitor._counts[k], counts)


def test_score_drift_fires_on_a_shift_of_the_served_score() -> None:
    rng = np.random.default_rng(2)
    monitor = ScoreDrift(cooldown_ms=10**9)
    assert monitor.update(rng.beta(1, 30, size=5000), 0) == []
    events = monitor.update(rng.beta(1, 5, size=2000), 1)
    assert len(events) == 1 and events[0].kind == "score"
    assert events[0].statistic > events[0].threshold


def test_concept_drift_fires_within_a_bounded_number_of_labels_after_a_change() -> None:
    rng = np.random.default_rng(3)
    monitor = ConceptDrift("lightgbm", cooldown_ms=10**9)
    for _ in range(20_000):  # a good model: frauds score high
        y = rng.random() < 0.02
        assert monitor.update(rng.beta(8, 2) if y else rng.beta(1, 30), y, 0) == []
    fired_at = None
    for i in range(20_000):  # stale: frauds now score like legit ones
        y = rng.random() < 0.02
        if monitor.update(rng.beta(1, 30), y, 1):
            fired_at = i
            break
    assert fired_at is not None and fired_at < 5000


def test_concept_drift_watches_each_class_and_restores_an_older_pickle() -> None:
    rng = np.random.default_rng(4)
    monitor = ConceptDrift("lightgbm", cooldown_ms=10**9)
    for _ in range(10_000):
        y = rng.random() < 0.02
        assert monitor.update(rng.beta(8, 2) if y else rng.beta(1, 30), y, 0) == []
    # Only the legit class changes: the model now scores legit payments much higher.
    events = []
    for _ in range(10_000):
        y = rng.random() < 0.02
        events += monitor.update(rng.beta(8, 2) if y else rng.beta(3, 10), y, 1)
        if events:
            break
    assert events and "legit labels" in events[0].details
    assert monitor.detections == [monitor.labels]

    old = ConceptDrift.__new__(ConceptDrift)
    state = {k: v for k, v in vars(monitor).items() if k not in ("detectors", "detections")}
    old.__setstate__({**state, "detector": None})
    assert "detector" not in vars(old) and old.detections == []
    assert old.update(0.5, True, 2) == []


def test_weighted_reference_bins_equal_the_unsampled_population() -> None:
    # Downsampling the 0s to a tenth with weight 10 gives (nearly) the population's bins.
    rng = np.random.default_rng(5)
    population = np.column_stack([rng.exponential(3.0, 20_000), rng.integers(0, 4, 20_000)])
    population[:, 0] = np.where(population[:, 1] == 0, 0.0, population[:, 0])
    kept = (population[:, 1] != 0) | (np.arange(20_000) % 10 == 0)
    weights = np.where(population[kept, 1] == 0, 10.0, 1.0)
    full = reference_bins(population, ["x", "k"])
    sampled = reference_bins(population[kept], ["x", "k"], weights=weights)
    unweighted = reference_bins(population[kept], ["x", "k"])
    for name in ("x", "k"):
        assert np.allclose(sampled[name].proportions.sum(), 1.0)
        assert np.allclose(sampled[name].edges, full[name].edges, rtol=0.05, atol=0.05), name
        assert np.allclose(sampled[name].proportions, full[name].proportions, atol=0.01)

    # Without the weights the share of zeros would be badly off.
    def zeros(b: ReferenceBins) -> float:
        return float(b.proportions[np.searchsorted(b.edges, 0.0, side="right")])

    assert zeros(full["k"]) == pytest.approx(0.25, abs=0.02)
    assert zeros(sampled["k"]) == pytest.approx(zeros(full["k"]), abs=0.01)
    assert zeros(unweighted["k"]) < zeros(full["k"]) / 2


def test_missing_values_count_in_the_top_bin_like_the_monitor_puts_them() -> None:
    column = np.array([1.0, 2.0, 3.0, 4.0, np.nan, np.nan])[:, None]
    bins = reference_bins(column, ["x"], bins=2)["x"]
    assert bins.edges.tolist() == [2.0]
    assert bins.proportions.tolist() == [1 / 6, 5 / 6]
    assert bins_from_record(bins_to_record({"x": bins}))["x"].edges.tolist() == [2.0]
