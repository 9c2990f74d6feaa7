"""ClickHouse writes off the event loop, retried until the store takes them (back-pressure)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from streamlearn.foundation.errors import StoreUnavailable

log = logging.getLogger(__name__)

# What clickhouse-connect reports for a server that refuses connections (fault injection).
UNREACHABLE = (
    "Error HTTPConnectionPool(host='clickhouse', port=8123): Max retries exceeded "
    "(Caused by NewConnectionError: [Errno 111] Connection refused)"
)
# While the store stays down, one reminder in the log this often (plus the first failure).
REMIND_EVERY_S = 30.0


class StoreSink:
    """Runs store calls on one thread; a failed insert is retried with backoff, never dropped.

    While the store is down the writer holds its batch un-acked (no offset is committed past
    it) and, once `store_max_pending_rows` are waiting, the scoring agents wait in `submit`:
    consumption stops instead of buffering without bound, and resumes when an insert passes.
    """

    def __init__(
        self,
        store: Any,
        *,
        max_backoff_s: float = 10.0,
        fault_down_file: Path | None = None,
    ) -> None:
        self.store = store
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.max_backoff_s = max_backoff_s
        self.fault_down_file = fault_down_file
        self.down_since: float | None = None
        self.failures = 0  # failed inserts since the worker started
        self.outage_retries = 0  # failed attempts in the current outage
        self.outages = 0
        self.last_error = ""
        self._reminded = 0.0

    async def call(self, fn, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, *args)

    async def insert(
        self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str], token: str
    ) -> None:
        """Return once ClickHouse has the rows; retry forever (same token) while it fails."""
        await self._until_up(self._insert, table, rows, columns, token)

    async def read(self, fn, *args: Any) -> Any:
        """A read the worker cannot go on without (the label join's look-up): retried like an
        insert while the store is unavailable, so an outage pauses learning, never stops it."""
        return await self._until_up(fn, *args)

    async def _until_up(self, fn, *args: Any) -> Any:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(StoreUnavailable),
            # 0.2 s doubling up to max_backoff_s, plus jitter so workers do not retry in step.
            wait=wait_exponential(multiplier=0.2, max=self.max_backoff_s) + wait_random(0, 0.2),
            before_sleep=self._failed,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                result = await self.call(fn, *args)
        if self.down_since is not None:
            log.warning(
                "store back after %.1fs and %d retries; writing resumed",
                time.time() - self.down_since,
                self.outage_retries,
            )
            self.down_since = None
            self.outage_retries = 0
        return result

    def _insert(
        self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str], token: str
    ) -> None:
        if self.fault_down_file is not None and self.fault_down_file.exists():
            raise StoreUnavailable(
                f"insert into {table} failed: {UNREACHABLE} "
                f"[fault injection: {self.fault_down_file} exists]"
            )
        self.store.insert(table, rows, columns, token)

    def _failed(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.failures += 1
        self.outage_retries += 1
        self.last_error = str(exc)
        now = time.time()
        if self.down_since is None:
            self.down_since = now
            self.outages += 1
            self._reminded = now
            log.error("store unavailable: holding the batch un-acked and retrying: %s", exc)
        elif now - self._reminded >= REMIND_EVERY_S:
            self._reminded = now
            log.error(
                "store still unavailable after %.0fs (%d retries): %s",
                now - self.down_since,
                self.outage_retries,
                exc,
            )

    def status(self) -> dict[str, Any]:
        """The store's health as /status/ shows it."""
        since = self.down_since
        return {
            "store_down_since": since,
            "store_unavailable_since": (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)) if since else None
            ),
            "store_unavailable_s": time.time() - since if since else 0.0,
            "store_failures": self.failures,
            "store_retries": self.outage_retries,
            "store_outages": self.outages,
            "store_last_error": self.last_error,
        }

    def close(self) -> None:
        self.executor.shutdown(wait=True)
