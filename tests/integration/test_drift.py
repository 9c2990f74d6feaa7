"""Simulated traffic with a drift point through a real worker: data drift names what moved.

The simulator's drift multiplies amounts by 1.35 and moves hybrid merchants online; on
10 quantile bins that is a PSI of ~0.09 for amount/log_amount (below the default 0.2 of a
"significant" shift), so this test runs the worker at STREAMLEARN_DRIFT_PSI_THRESHOLD=0.05.
Without a champion the reference bins are the first 5,000 events the worker scored.
"""

from __future__ import annotations

import time
from pathlib import Path

from streamlearn.access import RemoteStore
from streamlearn.processes import WorkerProcess
from streamlearn.settings import Settings
from streamlearn.simulate import DRIFTED_FEATURES, Simulator
from streamlearn.simulate.replay import Replayer

BEFORE, AFTER = 10_000, 10_000
DAY_MS = 86_400_000


def test_data_drift_events_name_the_changed_features(settings: Settings, tmp_path: Path) -> None:
    settings = settings.with_overrides(drift_psi_threshold=0.05, learners="lr,hat,hst")
    sim = Simulator(seed=5, cards=2000)
    sim.set_drift(index=BEFORE)
    start = int(time.time() * 1000) - 5 * DAY_MS
    # ~5,000 events per day of event time, no daily cycle: the reference covers whole days.
    events = sim.events(start, rate_per_s=5000 / 86_400, count=BEFORE + AFTER, diurnal=False)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        replay = Replayer(settings)
        counts = replay.publish(events)
        replay.release_until(int(time.time() * 1000))
        status = worker.wait_for("predictions", counts.transactions, timeout=90)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = worker.status()
            subjects = {e["subject"] for e in status["drift_events"] if e["kind"] == "data"}
            if subjects & set(DRIFTED_FEATURES):
                break
            time.sleep(1)
        assert subjects & {"amount", "log_amount", "channel_code"}, (subjects, status["drift_psi"])
        assert status["learners"] == ["river_lr", "river_hat", "river_hst"]
        assert status["learned"] > 0

        time.sleep(6)  # drift events reach ClickHouse every 5 s
        _, rows = RemoteStore(f"http://127.0.0.1:{settings.web_port}", timeout=60).query_rows(
            "SELECT DISTINCT subject FROM streamlearn.drift_events WHERE kind = 'data'"
        )
        assert {r[0] for r in rows} & {"amount", "log_amount", "channel_code"}
    finally:
        worker.stop(timeout=30)
