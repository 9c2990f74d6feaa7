"""The bench's arithmetic: percentiles, per-slice tails, rates from sampled counters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamlearn.tools.bench.figures import (
    Latency,
    counter_rate,
    fmt,
    ratio,
    served_none,
    slices,
    span_rate,
)


def test_latency_percentiles_of_a_known_run() -> None:
    lat = Latency.of(list(range(1, 101)))  # 1..100 ms
    assert lat.count == 100
    assert lat.p50 == pytest.approx(50.5)
    assert lat.p99 == pytest.approx(99.01)
    assert lat.max == 100


def test_latency_of_nothing_is_nan_not_zero() -> None:
    lat = Latency.of([])
    assert lat.count == 0 and math.isnan(lat.p99) and math.isnan(lat.max)


def test_slices_put_each_event_in_its_5_second_window() -> None:
    sent = [0.0, 1.0, 4.99, 5.0, 9.0, 12.0]
    lat = [1.0, 2.0, 3.0, 100.0, 100.0, 7.0]
    out = slices(sent, lat)
    assert [(s.start_s, s.end_s, s.count) for s in out] == [
        (0.0, 5.0, 3),
        (5.0, 10.0, 2),
        (10.0, 15.0, 1),
    ]
    assert out[0].p99_ms == pytest.approx(np.percentile([1.0, 2.0, 3.0], 99))
    assert out[1].p99_ms == 100.0 and out[2].p99_ms == 7.0


def test_a_spike_shows_in_its_slice_only() -> None:
    sent = np.arange(0, 20, 0.01)
    lat = np.where((sent >= 10) & (sent < 15), 400.0, 5.0)
    tails = [s.p99_ms for s in slices(sent, lat)]
    assert tails == [5.0, 5.0, 400.0, 5.0]


def test_empty_slices_are_left_out_and_mismatches_refused() -> None:
    assert [s.start_s for s in slices([0.5, 21.0], [1.0, 2.0])] == [0.0, 20.0]
    assert slices([], []) == []
    with pytest.raises(ValueError):
        slices([1.0], [1.0, 2.0])


def test_counter_rate_from_first_to_last_change() -> None:
    # Idle before (base 100) and after: only the interval over which the counter moved counts.
    samples = [(0.0, 100), (1.0, 100), (2.0, 1100), (3.0, 6100), (4.0, 11100), (9.0, 11100)]
    assert counter_rate(samples) == pytest.approx(10_000 / 2.0)


def test_counter_rate_with_one_change_is_a_lower_bound() -> None:
    # Everything learned between two snapshots one second apart: at least 50,000/s.
    assert counter_rate([(0.0, 0), (1.0, 50_000), (2.0, 50_000)]) == pytest.approx(50_000)


def test_counter_rate_without_a_change_is_nan() -> None:
    assert math.isnan(counter_rate([(0.0, 5), (1.0, 5)]))
    assert math.isnan(counter_rate([]))


def test_span_rate_and_ratio() -> None:
    assert span_rate(10_000, 1.0, 3.0) == 5_000
    assert math.isnan(span_rate(1, 1.0, 3.0)) and math.isnan(span_rate(5, 3.0, 3.0))
    assert ratio(3.0, 4.0) == 0.75
    assert math.isnan(ratio(1.0, 0.0)) and math.isnan(ratio(math.nan, 1.0))


def test_served_none_and_formatting() -> None:
    assert served_none({"v1": 10, "none": 3}) == 3 and served_none({"v1": 1}) == 0
    assert fmt(12345.6) == "12,346" and fmt(1.25, 1) == "1.2" and fmt(math.nan) == "-"
    assert fmt(None) == "-" and fmt(math.inf) == "never"


def test_predictions_that_never_came_make_the_tail_infinite() -> None:
    # 2 of 100 never came: p99 is theirs; the median is still the measured one.
    lat = Latency.of([10.0] * 98, missing=2)
    assert lat.count == 100 and lat.p50 == 10.0
    assert math.isinf(lat.p99) and math.isinf(lat.max)
    # 1 of 1,000 missing leaves p99 finite (it is the slowest 1%).
    lat = Latency.of([5.0] * 999, missing=1)
    assert lat.p99 == 5.0 and math.isinf(lat.max)
    assert math.isinf(Latency.of([], missing=3).p50)
