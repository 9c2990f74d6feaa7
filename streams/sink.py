"""ClickHouse writes off the event loop, retried until the store takes them (back-pressure)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from streamlearn.errors import StoreUnavailable

log = logging.getLogger(__name__)


class StoreSink:
    """Runs store calls on one thread; a failed insert is retried with backoff, never dropped.

    While the store is down the agent awaiting `insert` does not finish its batch, so Faust
    neither acks nor fetches past it: consumption stops instead of buffering without bound.
    """

    def __init__(self, store: Any, *, max_backoff_s: float = 10.0) -> None:
        self.store = store
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.max_backoff_s = max_backoff_s
        self.down_since: float | None = None
        self.failures = 0
        self.last_error = ""

    async def call(self, fn, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, *args)

    async def insert(
        self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str], token: str
    ) -> None:
        backoff = 0.2
        while True:
            try:
                await self.call(self.store.insert, table, rows, columns, token)
            except StoreUnavailable as exc:
                self.failures += 1
                self.last_error = str(exc)
                if self.down_since is None:
                    self.down_since = time.time()
                    log.error("store unavailable, holding the batch and retrying: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            if self.down_since is not None:
                log.warning("store back after %.1fs", time.time() - self.down_since)
                self.down_since = None
            return

    def close(self) -> None:
        self.executor.shutdown(wait=True)
