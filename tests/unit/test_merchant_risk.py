"""Merchant fraud history: point in time (days strictly before the event's day), smoothed rate,
fraud counts and rates per matured transaction over 1, 7 and 28 days."""

from __future__ import annotations

import pytest

from streamlearn.domain.features import MERCHANT_HISTORY
from streamlearn.streams.merchant_risk import (
    DAY_MS,
    LOOKBACK_DAYS,
    PRIOR_RATE,
    PRIOR_WEIGHT,
    MerchantRisk,
)

D = 20_454  # 2026-01-01 as a day number
NOON = D * DAY_MS + DAY_MS // 2


def smoothed(frauds: int, labeled: int) -> tuple[float, float]:
    return ((frauds + PRIOR_RATE * PRIOR_WEIGHT) / (labeled + PRIOR_WEIGHT), float(labeled))


def test_unknown_merchant_gets_the_prior() -> None:
    risk = MerchantRisk()
    assert risk.rate("never-seen", NOON)[:2] == (pytest.approx(PRIOR_RATE), 0.0)
    assert len(risk) == 0


def test_only_days_strictly_before_the_event_day_count() -> None:
    risk = MerchantRisk()
    risk.add("m", NOON, True)  # known at noon on day D
    assert risk.rate("m", D * DAY_MS)[:2] == smoothed(0, 0)  # midnight of day D
    assert risk.rate("m", NOON + 1)[:2] == smoothed(0, 0)  # later the same day: not yet
    assert risk.rate("m", (D + 1) * DAY_MS)[:2] == smoothed(1, 1)  # from the next day on
    assert risk.rate("m", NOON - DAY_MS)[:2] == smoothed(0, 0)  # the day before never sees it


def test_lookback_is_thirty_days() -> None:
    risk = MerchantRisk()
    risk.add("m", NOON, True)
    assert risk.rate("m", (D + LOOKBACK_DAYS) * DAY_MS + 5)[:2] == smoothed(1, 1)
    assert risk.rate("m", (D + LOOKBACK_DAYS + 1) * DAY_MS)[:2] == smoothed(0, 0)


def test_add_updates_a_cached_rate() -> None:
    risk = MerchantRisk()
    later = NOON + 3 * DAY_MS
    assert risk.rate("m", later)[:2] == smoothed(0, 0)
    risk.add("m", NOON, False)
    assert risk.rate("m", later)[:2] == smoothed(0, 1)
    risk.add("m", NOON + DAY_MS, True)
    risk.add("m", NOON + DAY_MS, True)
    assert risk.rate("m", later)[:2] == smoothed(2, 3)
    assert risk.rate("other", later)[:2] == smoothed(0, 0)


def test_add_for_one_merchant_keeps_the_others() -> None:
    risk = MerchantRisk()
    risk.add("a", NOON, True)
    risk.add("b", NOON, False)
    after = NOON + DAY_MS
    assert risk.rate("a", after)[:2] == smoothed(1, 1)
    risk.add("b", NOON, True)
    assert risk.rate("a", after)[:2] == smoothed(1, 1)
    assert risk.rate("b", after)[:2] == smoothed(1, 2)
    assert len(risk) == 2


def test_replace_takes_the_stores_buckets_and_keeps_counts_not_yet_written() -> None:
    risk = MerchantRisk()
    risk.add("old", NOON, True)
    after = NOON + 2 * DAY_MS
    assert risk.rate("old", after)[:2] == smoothed(1, 1)
    risk.replace([("new", D, 3, 10), ("new", str(D + 1), 1, 5), ("x", float(D), 0, 4)])
    assert risk.rate("old", after)[:2] == smoothed(1, 1)  # counted here, not yet in the store
    assert risk.rate("new", after)[:2] == smoothed(4, 15)
    assert risk.rate("new", NOON + DAY_MS)[:2] == smoothed(3, 10)
    assert risk.rate("x", after)[:2] == smoothed(0, 4)
    assert len(risk) == 3
    risk.replace([("old", D, 2, 3)])  # the store has counted more: its count wins
    assert risk.rate("old", after)[:2] == smoothed(2, 3)
    assert risk.rate("new", after)[:2] == smoothed(4, 15)  # buckets only grow


def test_many_labels_approach_the_observed_rate() -> None:
    risk = MerchantRisk()
    risk.replace([("m", D - 1, 500, 1000)])
    rate, labeled = risk.rate("m", NOON)[:2]
    assert labeled == 1000.0 and rate == pytest.approx(0.5, abs=0.01)


def test_rate_does_not_depend_on_the_order_of_outcomes() -> None:
    outcomes = [(NOON - k * DAY_MS + k * 1000, k % 3 == 0) for k in range(1, 40)]
    a, b = MerchantRisk(), MerchantRisk()
    for known, fraud in outcomes:
        a.add("m", known, fraud)
    for known, fraud in reversed(outcomes):
        b.add("m", known, fraud)
    assert a.rate("m", NOON) == b.rate("m", NOON)


def history(risk: MerchantRisk, merchant: str, event_ms: int) -> dict[str, float]:
    return dict(zip(MERCHANT_HISTORY, risk.rate(merchant, event_ms), strict=True))


def test_fraud_counts_cover_outcomes_known_in_the_last_1_7_and_28_days() -> None:
    risk = MerchantRisk()
    for ago in (1, 5, 20, 29):
        risk.add("m", NOON - ago * DAY_MS, True)
    risk.add("m", NOON - 2 * DAY_MS, False)
    risk.add("m", NOON, True)  # known today: counts from tomorrow on
    h = history(risk, "m", NOON + 1)
    assert (h["merchant_frauds_1d"], h["merchant_frauds_7d"], h["merchant_frauds_28d"]) == (
        1.0,
        2.0,
        3.0,
    )
    assert h["merchant_labeled_30d"] == 5.0
    assert history(risk, "m", NOON + DAY_MS)["merchant_frauds_1d"] == 1.0  # today's, tomorrow


def test_rates_divide_by_every_matured_transaction_not_only_the_labelled() -> None:
    risk = MerchantRisk(maturity_days=7)
    for k in range(10):  # ten payments eight days ago: they matured yesterday
        risk.scored("t", NOON - 8 * DAY_MS + k)
    risk.add("t", NOON - DAY_MS, True)  # one fraud among them, the others never labelled
    risk.add("t", NOON - DAY_MS, False)
    h = history(risk, "t", NOON)
    assert h["merchant_fraud_rate_1d"] == pytest.approx(0.1)
    assert h["merchant_fraud_rate_28d"] == pytest.approx(0.1)
    assert h["merchant_fraud_rate"] == smoothed(1, 2)[0]  # the v1 rate: over labelled only
    assert history(risk, "never", NOON)["merchant_fraud_rate_7d"] == 0.0


def test_a_rate_never_exceeds_one_when_outcomes_outrun_the_counted_transactions() -> None:
    risk = MerchantRisk()
    risk.add("t", NOON - DAY_MS, True)
    risk.add("t", NOON - DAY_MS, True)  # reported early, before maturing
    assert history(risk, "t", NOON)["merchant_fraud_rate_7d"] == 1.0


def test_a_scored_transaction_changes_no_figure_of_days_before_it_matures() -> None:
    risk = MerchantRisk(maturity_days=7)
    risk.add("t", NOON - 3 * DAY_MS, True)
    before = risk.rate("t", NOON)
    risk.scored("t", NOON)  # cached for today, unchanged by a payment maturing in a week
    assert risk.rate("t", NOON) is before
    risk.scored("t", NOON - 9 * DAY_MS)  # a late payment that matured two days ago
    assert history(risk, "t", NOON)["merchant_fraud_rate_7d"] == 1.0
    risk.scored("t", NOON - 9 * DAY_MS)
    assert history(risk, "t", NOON)["merchant_fraud_rate_7d"] == 0.5


def test_refresh_rows_carry_scored_transactions_by_event_day() -> None:
    risk = MerchantRisk(maturity_days=7)
    risk.replace([("t", D - 8, 0, 0, 4), ("t", D - 1, 1, 1, 0)])
    h = history(risk, "t", NOON)
    assert h["merchant_frauds_1d"] == 1.0 and h["merchant_fraud_rate_1d"] == 0.25


def test_old_buckets_are_pruned_as_new_days_open() -> None:
    risk = MerchantRisk()
    for day in range(100):
        risk.add("m", NOON + day * DAY_MS, day % 2 == 0)
        risk.scored("m", NOON + day * DAY_MS)
    assert len(risk._days["m"]) <= 32 and len(risk._scored["m"]) <= 40
