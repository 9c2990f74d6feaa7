"""Makes scored batches durable off the scoring path, then acks their events.

The scoring actor publishes predictions and hands its rows here; the writer coalesces what
every partition handed it into one ClickHouse insert, writes the feature-state changelog,
and only then acks the events, so Faust commits an offset only once everything the event
produced is durable. A bounded backlog makes the actors wait (back-pressure) when the store
is slow or down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from streamlearn.foundation.store import batch_token

log = logging.getLogger(__name__)


@dataclass
class ScoredBatch:
    """One actor's batch: its rows, its state changes and the events to ack once durable."""

    stream: Any
    events: list[Any]
    partition: int
    rows: list[list[Any]]
    dirty: dict[str, tuple[int, list[Any]]]
    txn_ids: list[str] = field(default_factory=list)


class BatchWriter:
    """One background task; a batch's events are acked after its rows and state are durable."""

    def __init__(self, ctx: Any, columns: tuple[str, ...], max_rows: int = 20_000) -> None:
        self.ctx = ctx
        self.columns = columns
        self.max_rows = max_rows
        self._queue: list[ScoredBatch] = []
        self._rows = 0
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.inserts = 0
        self.blocked = 0  # actors waiting for room: consumption is paused

    @property
    def pending_rows(self) -> int:
        """Rows handed over and not yet durable (bounded by max_rows plus one batch)."""
        return self._rows

    @property
    def idle(self) -> bool:
        """Everything submitted so far is durable and acked."""
        return self._idle.is_set()

    async def submit(self, batch: ScoredBatch) -> None:
        if self._rows >= self.max_rows:
            self.blocked += 1
            try:
                while self._rows >= self.max_rows:
                    self._space.clear()
                    await self._space.wait()
            finally:
                self.blocked -= 1
        self._queue.append(batch)
        self._rows += len(batch.rows)
        self._idle.clear()
        self._ready.set()

    async def drain(self) -> None:
        """Wait until everything submitted so far is durable and acked."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            if not self._queue:
                continue
            batches, self._queue = self._queue, []
            await self._write(batches)
            self._rows -= sum(len(b.rows) for b in batches)
            self._space.set()
            if not self._queue:
                self._idle.set()

    async def _write(self, batches: list[ScoredBatch]) -> None:
        ctx = self.ctx
        rows = [row for b in batches for row in b.rows]
        if rows:
            # A retry of this same insert is skipped by ClickHouse; a replay after a crash
            # groups differently and is collapsed by ReplacingMergeTree (query with FINAL).
            token = batch_token(
                "txn",
                batches[0].partition,
                min(b.events[0].message.offset for b in batches),
                max(b.events[-1].message.offset for b in batches),
                (t for b in batches for t in b.txn_ids),
            )
            await ctx.sink.insert("transactions", rows, self.columns, token)
        dirty: dict[str, tuple[int, list[Any]]] = {}
        for b in batches:
            dirty.update(b.dirty)
        if dirty:
            await self._write_changelog(dirty)
        for b in batches:
            for event in b.events:
                await b.stream.ack(event)
        self.inserts += 1
        ctx.stats.transactions += len(rows)

    async def _write_changelog(self, dirty: dict[str, tuple[int, list[Any]]]) -> None:
        """Each key's latest state, filed under the partition of the events that changed it."""
        ctx = self.ctx
        topic = ctx.table.changelog_topic.get_topic_name()
        produce = ctx.producer.produce
        dumps = json.dumps
        for key, (partition, value) in dirty.items():
            data = dumps(value, separators=(",", ":")).encode()
            while True:
                try:
                    produce(topic, key=dumps(key).encode(), value=data, partition=partition)
                    break
                except BufferError:
                    ctx.producer.poll(0.05)
        await flush(ctx)


async def flush(ctx: Any) -> None:
    """Wait until every produced message is acknowledged; raise if any was refused."""
    loop = asyncio.get_running_loop()
    remaining = await loop.run_in_executor(None, ctx.producer.flush, 60)
    if remaining or ctx.delivery_errors:
        errors = ctx.delivery_errors[:3]
        ctx.delivery_errors.clear()
        raise RuntimeError(f"Kafka delivery failed ({remaining} pending): {errors}")
