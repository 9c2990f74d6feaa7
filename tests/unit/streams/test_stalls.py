"""The loop-stall monitor: a slow callback or task step is recorded with where it ran; off, the
loop is not touched; the table and the file it writes on stop."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamlearn.streams import stalls


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    stalls.uninstall()


def busy(ms: float) -> None:
    """Hold the loop thread on the CPU (a sleep would show wall time without CPU)."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


async def slow_step() -> None:
    busy(30)
    await asyncio.sleep(0.01)  # where the task stops after its slow step
    busy(1)


def slow_callback() -> None:
    busy(25)


async def run_all() -> None:
    loop = asyncio.get_running_loop()
    loop.call_soon(slow_callback)
    await loop.create_task(slow_step())
    for _ in range(20):
        await asyncio.sleep(0)  # fast steps: under the threshold, not recorded


def test_off_leaves_the_loop_untouched() -> None:
    original = asyncio.events.Handle._run
    assert stalls.install(0) is None
    assert asyncio.events.Handle._run is original
    asyncio.run(run_all())
    assert stalls.snapshot() is None
    stalls.stop(None)
    assert asyncio.events.Handle._run is original


def test_slow_callbacks_are_recorded_with_their_source() -> None:
    original = asyncio.events.Handle._run
    monitor = stalls.install(10)
    assert monitor is not None and asyncio.events.Handle._run is not original
    asyncio.run(run_all())
    by = {r["source"]: r for r in monitor.summary()["by_source"]}
    assert monitor.count == 2, by
    callback = by[f"{__name__}.slow_callback"]
    assert callback["count"] == 1 and callback["max_ms"] >= 25
    # A task step names the coroutine and the line it stopped at after the slow stretch.
    step_line = slow_step.__code__.co_firstlineno + 2
    (step,) = [r for s, r in by.items() if s.startswith("slow_step @ ")]
    assert step["source"].endswith(f"tests/unit/streams/test_stalls.py:{step_line}")
    assert step["max_ms"] >= 30
    assert 15 <= step["max_cpu_ms"] <= step["max_ms"] + 1  # busy: CPU, not waiting
    stalls.uninstall()
    assert asyncio.events.Handle._run is original


def test_a_wait_without_cpu_shows_as_wall_only() -> None:
    monitor = stalls.install(10)
    assert monitor is not None

    async def sleeps_blocking() -> None:
        time.sleep(0.03)  # what a GIL wait or a blocking call looks like from the loop

    asyncio.run(sleeps_blocking())
    (row,) = monitor.summary()["by_source"]
    assert (
        row["source"]
        == "test_a_wait_without_cpu_shows_as_wall_only.<locals>.sleeps_blocking (done)"
    )
    assert row["max_ms"] >= 30 and row["max_cpu_ms"] < 10


def test_snapshot_and_file_on_stop(tmp_path: Path) -> None:
    stalls.install(10)
    asyncio.run(run_all())
    status = stalls.snapshot()
    assert status is not None
    assert status["count"] == 2 and status["dropped"] == 0 and len(status["by_source"]) == 2
    assert status["total_ms"] == pytest.approx(sum(r["total_ms"] for r in status["by_source"]))
    path = tmp_path / "out" / "stalls.json"
    stalls.stop(path)
    assert stalls.snapshot() is None
    body = json.loads(path.read_text())
    assert body["count"] == 2 and len(body["stalls"]) == 2
    at_s, wall_ms, cpu_ms, source = body["stalls"][0]
    assert abs(at_s - time.time()) < 60 and wall_ms >= 10 and cpu_ms >= 0 and source


def test_aggregate_counts_totals_and_maxima_per_source() -> None:
    rows = stalls.aggregate(
        [
            stalls.Stall(1.0, 10.0, 4.0, "a"),
            stalls.Stall(2.0, 30.0, 20.0, "a"),
            stalls.Stall(3.0, 50.0, 1.0, "b"),
        ]
    )
    assert rows == [
        {"source": "b", "count": 1, "total_ms": 50.0, "max_ms": 50.0, "cpu_ms": 1.0,
         "max_cpu_ms": 1.0},
        {"source": "a", "count": 2, "total_ms": 40.0, "max_ms": 30.0, "cpu_ms": 24.0,
         "max_cpu_ms": 20.0},
    ]  # fmt: skip


def test_kept_stalls_are_bounded_but_every_one_is_counted() -> None:
    monitor = stalls.StallMonitor(5, keep=3)
    handle = asyncio.Handle(slow_callback, (), asyncio.new_event_loop())
    for _ in range(5):
        monitor.record(handle, 0.02, 0.01)
    summary = monitor.summary()
    assert summary["count"] == 5 and summary["dropped"] == 2
    assert summary["by_source"][0]["count"] == 5


def test_short_path_drops_the_machines_prefix() -> None:
    assert stalls.short_path(stalls.__file__).endswith("streams/stalls.py")
    assert not stalls.short_path(stalls.__file__).startswith("/")
    assert stalls.short_path(asyncio.__file__) == "asyncio/__init__.py"
    assert stalls.short_path("/elsewhere/x.py") == "/elsewhere/x.py"
