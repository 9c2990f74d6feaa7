"""A Faust app whose stop and rebalances finish the work in flight before offsets move."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from streamlearn.streams.failure import fatal

log = logging.getLogger(__name__)


class DrainingApp(faust.App):
    """faust.App whose graceful stop finishes the in-flight batches before the last commit.

    Faust calls `_consumer_wait_empty` once the fetcher has stopped and before the agents and
    tasks stop. When the app is stopping (SIGTERM), it waits, up to `drain_s`, until no agent
    holds a batch and the writer has made every slice durable (rows + changelog) and acked
    it, then commits: a restart reprocesses nothing. A rebalance drains the same way.
    """

    drain_s: float = 30.0
    rebalance_drain_s: float = 20.0  # within the consumer session timeout
    quiet_s: float = 0.25  # a batch fetched just before the stop has been handed out
    in_flight = 0  # batches an agent is working on (taken, not yet handed to the writer)
    writer: Any = None
    on_drained: Any = None  # called once drained, before the last commit

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        """Faust calls this on a graceful stop and when partitions are revoked (a rebalance).

        Either way the work in flight is finished and made durable (rows, changelog, a learner
        checkpoint), acked and committed before the partitions go: the new owner starts where
        this worker's outputs end, and this worker never writes for a partition it no longer
        owns. If that cannot be done in time (the store is down), a rebalance stops the worker:
        its in-memory state is ahead of what is durable, and a restart recovers from the
        changelog and redoes the uncommitted events.
        """
        stopping = self.should_stop
        what = "graceful stop" if stopping else "rebalance"
        budget = self.drain_s if stopping else self.rebalance_drain_s
        log.warning("%s: finishing the in-flight batches (up to %.0fs)", what, budget)
        # asyncio.wait, not wait_for: a timeout must not wait for a commit stuck in a
        # rebalance to unwind, so the stop stays bounded.
        drained = await within(self._drain(), budget)
        if drained and self.on_drained is not None:
            drained = await within(self.on_drained(), budget)
        committed = await within(consumer.commit(), 10.0)
        if drained and committed:
            log.warning("%s: in-flight batches written and offsets committed", what)
        elif stopping:
            log.warning(
                "graceful stop: in-flight batches not durable and committed within %.0fs; "
                "their events are processed again after a restart",
                budget,
            )
        else:
            fatal("rebalance", RuntimeError(f"in-flight batches not durable within {budget}s"))

    async def _drain(self) -> None:
        """Until the agents hold nothing and the writer is idle, for quiet_s in a row."""
        loop = asyncio.get_running_loop()
        quiet_since = None
        while True:
            busy = self.in_flight > 0 or (self.writer is not None and not self.writer.idle)
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = loop.time()
            elif loop.time() - quiet_since >= self.quiet_s:
                return
            await asyncio.sleep(0.02)


async def within(coro: Any, timeout: float) -> bool:
    """Run coro for at most timeout seconds; False (and cancelled, not awaited) if late."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        return False
    return task.exception() is None
