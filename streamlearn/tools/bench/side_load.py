"""What else production asks of a worker while it scores: an analyst's aggregate every few
seconds and a `streamlearn retrain` in its own process, both through the worker's store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.settings import Settings, settings_env
from streamlearn.foundation.store.access import worker_store
from streamlearn.tools.bench.champion import MATURITY_S
from streamlearn.tools.bench.figures import Latency
from streamlearn.tools.bench.periodic import Periodic

# What an analyst watching the fraud desk runs: the day's payments, scores and alerts per
# merchant category, over every row the worker wrote today.
ANALYST_SQL = """
SELECT merchant_category, count() AS payments, avg(score) AS mean_score,
       countIf(score > 0.5) AS alerts, quantile(0.99)(amount) AS p99_amount
FROM streamlearn.transactions
WHERE event_time >= now64(3) - INTERVAL 1 DAY
GROUP BY merchant_category
ORDER BY payments DESC
"""
RETRAIN_TIMEOUT_S = 600.0


class Analyst(Periodic):
    """`streamlearn query`'s path (a read-only RemoteStore) every interval_s, on a thread."""

    join_timeout_s = 60.0

    def __init__(self, settings: Settings, interval_s: float = 5.0) -> None:
        super().__init__("bench-analyst", interval_s, paced=True)
        self.store = worker_store(settings, readonly=True)
        self.seconds: list[float] = []
        self.errors: list[str] = []

    def tick(self) -> None:
        t0 = time.perf_counter()
        try:
            self.store.query_df(ANALYST_SQL, readonly=1)
        except StreamlearnError as exc:
            self.errors.append(str(exc))
        else:
            self.seconds.append(time.perf_counter() - t0)

    def summary(self) -> dict[str, Any]:
        lat = Latency.of([s * 1000 for s in self.seconds])
        return {
            "queries": len(self.seconds),
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else None,
            "p50_ms": lat.p50,
            "max_ms": lat.max,
        }


class Retrain:
    """`python -m streamlearn retrain` in its own process: it finds the worker that owns the
    embedded store and sends its SQL there, as an operator's would."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.result: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="bench-retrain", daemon=True)

    def start(self) -> Retrain:
        self._thread.start()
        return self

    def _run(self) -> None:
        env = {**os.environ, **settings_env(self.settings)}
        t0 = time.monotonic()
        try:
            out = subprocess.run(
                [sys.executable, "-m", "streamlearn", "retrain", "--maturity-s", str(MATURITY_S)],
                env=env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=RETRAIN_TIMEOUT_S,
                check=False,
            )
            code, said = out.returncode, (out.stdout.strip() or out.stderr.strip())
        except subprocess.TimeoutExpired:
            code, said = None, f"still running after {RETRAIN_TIMEOUT_S:.0f}s: killed"
        self.result = {
            "exit": code,
            "seconds": round(time.monotonic() - t0, 1),
            "said": said.splitlines()[0] if said else "",
        }

    def finish(self) -> dict[str, Any]:
        """Wait for it (it may outlast the load): its exit, duration and first line."""
        self._thread.join(RETRAIN_TIMEOUT_S + 10)
        return self.result
