"""The worker's store access: writes, its own reads and analysts' reads, each on its own
session and thread, so none waits behind another; writes retried until the store takes them.

- writes: the scoring path's rows, outcomes, metrics; retried with backoff under the same
  dedup token, never dropped (back-pressure holds the batches un-acked meanwhile);
- reads: the worker's own look-ups (the label join, merchant fraud rates), retried likewise;
- analyst: SQL from `streamlearn query`, `retrain`, `status`, the report: a read-only session
  (readonly=2, set once), one ClickHouse thread, a time limit, lower priority. A long analyst
  query delays neither inserts nor the label join.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.foundation.store import Store

log = logging.getLogger(__name__)
# While the store stays down, one reminder in the log this often (plus the first failure).
REMIND_EVERY_S = 30.0
# Proxied reads (analysts, retrain, status) run on one ClickHouse thread, niced
# (os_thread_priority: the OS schedules the scoring path first); a read-only request's statement
# also carries max_execution_time (streams/store_access.py).
ANALYST_SETTINGS = {"max_threads": 1, "os_thread_priority": 10}


class Lane:
    """One store session and the one thread that uses it."""

    def __init__(self, store: Any, name: str) -> None:
        self.store = store
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"store-{name}")

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, *args)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.store.close()


class StoreSink:
    """Writes and reads retried with backoff while the store is unavailable, on three lanes.

    While the store is down the writer holds its slices un-acked (no offset is committed past
    them) and, once `store_max_pending_rows` are waiting, the scoring agents wait in `submit`:
    consumption stops instead of buffering without bound, and resumes when an insert passes.
    """

    def __init__(
        self,
        url: str,
        *,
        max_backoff_s: float = 10.0,
        open_store: Callable[..., Any] = Store,
    ) -> None:
        self.url = url
        self.writes = Lane(open_store(url), "write")
        self.reads = Lane(open_store(url), "read")
        # readonly=2: writes refused, a statement's own SETTINGS (its time limit) allowed, and
        # `readonly` cannot be changed; table functions are refused by the SQL policy.
        self.analyst = Lane(open_store(url, readonly=2, session=ANALYST_SETTINGS), "analyst")
        self.max_backoff_s = max_backoff_s
        self.down_since: float | None = None
        self.failures = 0  # failed attempts since the worker started
        self.outage_retries = 0  # failed attempts in the current outage
        self.outages = 0
        self.last_error = ""
        self._reminded = 0.0

    @property
    def store(self) -> Any:
        """The write session (migrations at start)."""
        return self.writes.store

    async def insert(self, table: str, rows: Any, columns: Any, token: str) -> None:
        """Return once ClickHouse has the rows; retry forever (same token) while it fails."""
        await self._until_up(self.writes, self.writes.store.insert, table, rows, columns, token)

    async def insert_arrow(self, build: Callable[[], list[tuple[str, Any, str]]]) -> None:
        """Build Arrow tables on the write thread and insert each (table, data, dedup token) in
        order, retried together like `insert`: a retry skips what ClickHouse already has."""
        store = self.writes.store

        def build_and_insert() -> None:
            for table, data, token in build():
                store.insert_arrow(table, data, token)

        await self._until_up(self.writes, build_and_insert)

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A read the worker cannot go on without (the label join's look-up) on the read
        session: retried while the store is unavailable (an outage pauses learning)."""
        return await self._until_up(self.reads, fn, *args)

    async def query_analyst(self, sql: str, parameters: Any) -> Any:
        """An analyst's read-only query as Arrow, on its own session (its limits set at open)."""
        store = self.analyst.store
        return await self.analyst.call(lambda: store.query_arrow(sql, parameters))

    async def _until_up(self, lane: Lane, fn: Callable[..., Any], *args: Any) -> Any:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(StoreUnavailable),
            # 0.2 s doubling up to max_backoff_s, plus jitter so workers do not retry in step.
            wait=wait_exponential(multiplier=0.2, max=self.max_backoff_s) + wait_random(0, 0.2),
            before_sleep=self._failed,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                result = await lane.call(fn, *args)
        if self.down_since is not None:
            log.warning(
                "store back after %.1fs and %d retries; writing resumed",
                time.time() - self.down_since,
                self.outage_retries,
            )
            self.down_since = None
            self.outage_retries = 0
        return result

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
        for lane in (self.writes, self.reads, self.analyst):
            lane.close()
