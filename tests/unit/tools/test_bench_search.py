"""The sustainable-rate search: up from a share of the batch figure, narrowed, confirmed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamlearn.tools.bench.search import Probe, RateSearch


def drive(search: RateSearch, holds: Callable[[Probe], bool]) -> list[Probe]:
    runs = []
    while (probe := search.next()) is not None:
        runs.append(probe)
        search.record(holds(probe))
        assert len(runs) < 50, "the search must end"
    return runs


def test_climbs_from_30_percent_brackets_refines_and_confirms() -> None:
    s = RateSearch(10_000, probe_s=15, confirm_s=60)
    runs = drive(s, lambda p: p.rate <= 7_000)
    rates = [round(p.rate) for p in runs]
    # 3,000 -> 4,200 -> 5,880 -> 8,232 (fails) -> sqrt(5,880 x 8,232) = 6,957 -> confirm it.
    assert rates == [3000, 4200, 5880, 8232, 6957, 6957]
    assert [p.seconds for p in runs] == [15] * 5 + [60]
    assert [p.confirm for p in runs] == [False] * 5 + [True]
    assert s.result == pytest.approx(6957, rel=1e-3)


def test_never_probes_above_the_batch_figure() -> None:
    s = RateSearch(5_000)
    runs = drive(s, lambda p: True)
    assert max(p.rate for p in runs) == 5_000
    assert runs[-1].confirm and s.result == 5_000


def test_goes_down_when_the_first_probe_fails() -> None:
    s = RateSearch(10_000)
    runs = drive(s, lambda p: p.rate <= 1_000)
    assert [round(p.rate) for p in runs[:3]] == [3000, 2143, 1531]
    assert s.result is not None and 0 < s.result <= 1_000
    assert runs[-1].confirm


def test_a_failed_confirmation_confirms_the_next_lower_pass() -> None:
    # Short probes hold up to 7,000, but only 4,200 holds for a whole minute.
    s = RateSearch(10_000, refine=0)
    runs = drive(s, lambda p: p.rate <= (4_500 if p.confirm else 7_000))
    confirms = [round(p.rate) for p in runs if p.confirm]
    assert confirms == [5880, 4200]
    assert s.result == 4_200


def test_nothing_held_gives_zero() -> None:
    s = RateSearch(1_000, floor=50)
    drive(s, lambda p: False)
    assert s.result == 0.0


def test_probes_are_bounded() -> None:
    s = RateSearch(1e9, max_probes=4)  # every probe holds, far below the batch figure
    runs = drive(s, lambda p: True)
    assert sum(not p.confirm for p in runs) == 4 and runs[-1].confirm


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        RateSearch(0)
    with pytest.raises(ValueError):
        RateSearch(float("nan"))
    with pytest.raises(ValueError):
        RateSearch(1000, factor=1.0)
    s = RateSearch(1000)
    drive(s, lambda p: True)
    with pytest.raises(RuntimeError):
        s.record(True)
