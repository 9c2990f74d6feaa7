"""Inference cost to ClickHouse: per model version, the scoring CPU and rows of each minute.

The worker's counters (WorkerStats.inference_cpu_s / inference_count) only grow; every
flush writes what they gained since the previous flush, one row per version, into
streamlearn.model_usage, so the sum over rows is what each version cost to serve.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from streamlearn.streams.sink import StoreSink
from streamlearn.streams.stats import WorkerStats

TABLE = "model_usage"
COLUMNS = ("time", "worker", "version", "predictions", "cpu_s")


class UsageMeter:
    """Remembers what was already written, and turns counter gains into rows."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self._written: dict[str, tuple[float, int]] = {}

    def rows(self, stats: WorkerStats, now: dt.datetime) -> list[list[Any]]:
        """Rows for what each version gained since the last commit() (time: the minute)."""
        minute = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
        out = []
        for version, cpu in list(stats.inference_cpu_s.items()):
            count = stats.inference_count.get(version, 0)
            cpu0, count0 = self._written.get(version, (0.0, 0))
            if count > count0:
                out.append([minute, self.worker, version, count - count0, cpu - cpu0])
        return out

    def commit(self, rows: list[list[Any]]) -> None:
        """Those rows are stored: count them as written."""
        for _, _, version, predictions, cpu_s in rows:
            cpu0, count0 = self._written.get(version, (0.0, 0))
            self._written[version] = (cpu0 + cpu_s, count0 + predictions)

    def token(self, rows: list[list[Any]]) -> str:
        """Deduplication token: a retried batch is skipped, a different one never is."""
        h = hashlib.blake2b(digest_size=12)
        for row in rows:
            h.update(repr(row).encode())
        return f"usage:{self.worker}:{h.hexdigest()}"


async def flush_usage(sink: StoreSink, stats: WorkerStats, meter: UsageMeter) -> int:
    """Write the inference cost gained since the last flush; returns the rows written."""
    rows = meter.rows(stats, dt.datetime.now(dt.UTC))
    if rows:
        await sink.insert(TABLE, rows, COLUMNS, meter.token(rows))
        meter.commit(rows)
    return len(rows)
