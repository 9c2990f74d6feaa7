"""Merchant fraud rate: point in time (days strictly before the event's day), smoothed."""

from __future__ import annotations

import pytest

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
    assert risk.rate("never-seen", NOON) == (pytest.approx(PRIOR_RATE), 0.0)
    assert len(risk) == 0


def test_only_days_strictly_before_the_event_day_count() -> None:
    risk = MerchantRisk()
    risk.add("m", NOON, True)  # known at noon on day D
    assert risk.rate("m", D * DAY_MS) == smoothed(0, 0)  # midnight of day D
    assert risk.rate("m", NOON + 1) == smoothed(0, 0)  # later the same day: not yet
    assert risk.rate("m", (D + 1) * DAY_MS) == smoothed(1, 1)  # from the next day on
    assert risk.rate("m", NOON - DAY_MS) == smoothed(0, 0)  # the day before never sees it


def test_lookback_is_thirty_days() -> None:
    risk = MerchantRisk()
    risk.add("m", NOON, True)
    assert risk.rate("m", (D + LOOKBACK_DAYS) * DAY_MS + 5) == smoothed(1, 1)
    assert risk.rate("m", (D + LOOKBACK_DAYS + 1) * DAY_MS) == smoothed(0, 0)


def test_add_updates_a_cached_rate() -> None:
    risk = MerchantRisk()
    later = NOON + 3 * DAY_MS
    assert risk.rate("m", later) == smoothed(0, 0)
    risk.add("m", NOON, False)
    assert risk.rate("m", later) == smoothed(0, 1)
    risk.add("m", NOON + DAY_MS, True)
    risk.add("m", NOON + DAY_MS, True)
    assert risk.rate("m", later) == smoothed(2, 3)
    assert risk.rate("other", later) == smoothed(0, 0)


def test_add_for_one_merchant_keeps_the_others() -> None:
    risk = MerchantRisk()
    risk.add("a", NOON, True)
    risk.add("b", NOON, False)
    after = NOON + DAY_MS
    assert risk.rate("a", after) == smoothed(1, 1)
    risk.add("b", NOON, True)
    assert risk.rate("a", after) == smoothed(1, 1)
    assert risk.rate("b", after) == smoothed(1, 2)
    assert len(risk) == 2


def test_replace_swaps_all_buckets() -> None:
    risk = MerchantRisk()
    risk.add("old", NOON, True)
    after = NOON + 2 * DAY_MS
    assert risk.rate("old", after) == smoothed(1, 1)
    risk.replace([("new", D, 3, 10), ("new", str(D + 1), 1, 5), ("x", float(D), 0, 4)])
    assert risk.rate("old", after) == smoothed(0, 0)  # the cached rate is gone too
    assert risk.rate("new", after) == smoothed(4, 15)
    assert risk.rate("new", NOON + DAY_MS) == smoothed(3, 10)
    assert risk.rate("x", after) == smoothed(0, 4)
    assert len(risk) == 2
    risk.replace([])
    assert len(risk) == 0 and risk.rate("new", after) == smoothed(0, 0)


def test_many_labels_approach_the_observed_rate() -> None:
    risk = MerchantRisk()
    risk.replace([("m", D - 1, 500, 1000)])
    rate, labeled = risk.rate("m", NOON)
    assert labeled == 1000.0 and rate == pytest.approx(0.5, abs=0.01)


def test_rate_does_not_depend_on_the_order_of_outcomes() -> None:
    outcomes = [(NOON - k * DAY_MS + k * 1000, k % 3 == 0) for k in range(1, 40)]
    a, b = MerchantRisk(), MerchantRisk()
    for known, fraud in outcomes:
        a.add("m", known, fraud)
    for known, fraud in reversed(outcomes):
        b.add("m", known, fraud)
    assert a.rate("m", NOON) == b.rate("m", NOON)
