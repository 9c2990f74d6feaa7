"""The bench's side loads through a real worker: the analyst's aggregate (side_load.Analyst)
and the champion step's retrain store (champion.train_and_serve) send the worker's token and
are served. Both were refused with HTTP 401 once the store endpoints took a token."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streamlearn.foundation.errors import NotEnoughData
from streamlearn.foundation.settings import Settings
from streamlearn.tools.bench.champion import train_and_serve
from streamlearn.tools.bench.side_load import Analyst
from streamlearn.tools.processes import WorkerProcess


@pytest.mark.timeout(120)
def test_the_bench_side_loads_get_through_the_worker_store(
    settings: Settings, tmp_path: Path
) -> None:
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        analyst = Analyst(settings, interval_s=0.2).start()
        deadline = time.monotonic() + 15
        while len(analyst.seconds) + len(analyst.errors) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        analyst.stop()
        seen = analyst.summary()
        assert seen["errors"] == 0, f"the analyst's query was refused: {seen['first_error']}"
        assert seen["queries"] >= 3

        # The champion step's retrain reads the history through the worker: on an empty store
        # it stops at "no data yet", which only a served query can tell (a refused one raises
        # StoreUnavailable naming HTTP 401).
        with pytest.raises(NotEnoughData, match="no transactions"):
            train_and_serve(settings, worker, timeout_s=5)
