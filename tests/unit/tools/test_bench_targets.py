"""Issue 9's targets beside a run's figures: PASS, MISS, and n/a where the run has no figure."""

from __future__ import annotations

import math
from typing import Any

import pytest

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.tools.bench.options import Options
from streamlearn.tools.bench.targets import evaluate


def result(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "throughput": {
            "raw": {"per_s": 150_000.0},
            "faust": {"per_s": 17_000.0},
            "worker": {"per_s": 12_000.0},
        },
        "latency_ms": {"p50": 4.0, "p99": 20.0, "max": 40.0, "rate": 1000.0},
        "mixed": {"p50_ms": 6.0, "p99_ms": 45.0, "sent": 18_000, "learned": 18_000},
        "backlog": {"learned_per_s": 6_000.0, "p99_ms": 30.0},
        "sustainable_rate": 7_000.0,
        "model_version": "v1",
        "served_by_none": 0,
    }
    base.update(over)
    return base


def statuses(r: dict[str, Any]) -> dict[str, str]:
    return {t.name: t.status for t in evaluate(r)}


def test_a_run_meeting_every_target_passes_them_all() -> None:
    assert set(statuses(result()).values()) == {"PASS"}


def test_each_shortfall_is_a_miss() -> None:
    r = result(
        throughput={
            "raw": {"per_s": 150_000.0},
            "faust": {"per_s": 17_000.0},
            "worker": {"per_s": 9_000.0},
        },
        latency_ms={"p50": 4.0, "p99": 26.0, "max": 40.0, "rate": 1000.0},
        mixed={"p50_ms": 6.0, "p99_ms": 45.0, "sent": 18_000, "learned": 17_999},
        backlog={"learned_per_s": 4_999.0, "p99_ms": 51.0},
        sustainable_rate=4_000.0,
    )
    s = statuses(r)
    for name in (
        "throughput vs bare Faust",  # 9,000 / 17,000 = 53%
        "throughput per worker",
        "sustainable rate",  # 4,000 / 9,000 = 44%
        "latency",
        "mixed load learning",
        "backlog learning",
        "backlog latency",
    ):
        assert s[name] == "MISS", name
    assert s["mixed load latency"] == "PASS" and s["real champion"] == "PASS"


def test_the_10k_floor_applies_only_where_bare_faust_reaches_16700() -> None:
    slow = {
        "raw": {"per_s": 80_000.0},
        "faust": {"per_s": 6_000.0},
        "worker": {"per_s": 5_000.0},
    }
    s = statuses(result(throughput=slow, sustainable_rate=3_000.0))
    assert s["throughput per worker"] == "n/a"
    assert s["throughput vs bare Faust"] == "PASS"


def test_predictions_that_never_came_miss_and_missing_figures_are_not_passes() -> None:
    r = result(latency_ms={"p50": 4.0, "p99": math.inf, "max": math.inf, "rate": 1000.0})
    r["backlog"] = {"learned_per_s": math.nan, "p99_ms": 30.0}
    s = statuses(r)
    assert s["latency"] == "MISS"
    assert s["backlog learning"] == "n/a"


def test_a_prediction_served_by_none_fails_the_champion_target() -> None:
    assert statuses(result(served_by_none=3))["real champion"] == "MISS"
    assert statuses(result(model_version="none"))["real champion"] == "MISS"


def test_quick_is_shorter_and_options_that_cannot_be_honoured_are_refused() -> None:
    full, quick = Options(), Options.quick_run()
    assert quick.events < full.events and quick.latency_s < full.latency_s
    assert quick.confirm_s < full.confirm_s and quick.backlog < full.backlog
    full.check()
    quick.check()
    assert quick.with_(events=50_000, latency_s=None).events == 50_000
    assert quick.with_(latency_s=None).latency_s == quick.latency_s
    with pytest.raises(StreamlearnError, match="--events"):
        Options(events=1_000, latency_s=5, backlog=50_000).check()
