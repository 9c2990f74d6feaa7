"""Drift events from the table and the topic count once each; the reason ranks by excess."""

from __future__ import annotations

from streamlearn.batch_retrain.drift_feed import SeenDrift, merge_drift


def test_an_event_in_both_sources_counts_once_and_old_ones_not_at_all() -> None:
    amount = SeenDrift(2_000, "data", "amount", 0.5, 0.2)
    stored = [amount, SeenDrift(500, "data", "card_count_1h", 9.0, 0.2)]  # before the last run
    external = [amount, SeenDrift(3_000, "concept", "lightgbm", 0.9, 0.3)]
    count, subjects = merge_drift(stored, external, since_ms=1_000)
    assert count == 2
    assert subjects == ("concept lightgbm", "data amount")  # 3.0x before 2.5x


def test_without_a_previous_run_every_event_counts() -> None:
    events = [SeenDrift(t, "score", "served", 0.4, 0.2) for t in (1, 2, 3)]
    assert merge_drift(events, since_ms=None) == (3, ("score served",))
    assert merge_drift([], [], since_ms=None) == (0, ())
