"""Makes scored slices durable off the scoring path, then acks their offsets.

The scoring actor publishes predictions and hands each slice here without waiting. The
writer coalesces what every partition handed it into one Arrow insert, waits until Kafka has
acknowledged the slices' predictions and dead letters, writes each changed card/merchant
state to the table's changelog under the partition of the events that changed it, and only
then acks the slices' offset ranges: Faust commits an offset only once everything its event
produced is durable. A slice whose partition was revoked meanwhile is dropped unwritten (its
new owner reads it again), so a former owner never files stale state after the new one.
A bounded backlog makes the actors wait (back-pressure) when the store is slow or down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Set
from dataclasses import dataclass
from typing import Any

import orjson

from streamlearn.domain.features import CardState, MerchantState
from streamlearn.foundation.deliveries import Deliveries, TrackedProducer
from streamlearn.foundation.store import batch_token
from streamlearn.foundation.store.tables import PREDICTION_COLUMN_NAMES
from streamlearn.streams.batch import Batch
from streamlearn.streams.rows import ScoredRows, to_arrow
from streamlearn.streams.sink import StoreSink

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ScoredSlice:
    """One actor's slice: its rows, its state changes, and what must be acked before it."""

    batch: Batch
    rows: ScoredRows | None
    changes: dict[str, CardState | MerchantState]
    deliveries: Deliveries  # its predictions and dead letters

    @property
    def n_rows(self) -> int:
        return len(self.rows) if self.rows is not None else 0


class BatchWriter:
    """One background task; a slice's offsets are acked after its outputs are durable."""

    def __init__(
        self,
        sink: StoreSink,
        changelog: TrackedProducer,
        *,
        changelog_topic: Callable[[], str],
        ack: Callable[[Batch], Any],
        assigned: Callable[[], Set[Any]],
        max_rows: int = 20_000,
    ) -> None:
        self.sink = sink
        self.changelog = changelog
        self.changelog_topic = changelog_topic
        self.ack = ack
        self.assigned = assigned
        self.max_rows = max_rows
        self._queue: list[ScoredSlice] = []
        self._rows = 0
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.inserts = 0
        self.transactions = 0
        self.dropped_revoked = 0
        self.blocked = 0  # actors waiting for room: consumption is paused

    @property
    def pending_rows(self) -> int:
        """Rows handed over and not yet durable (bounded by max_rows plus one slice)."""
        return self._rows

    @property
    def idle(self) -> bool:
        """Everything submitted so far is durable and acked."""
        return self._idle.is_set()

    async def submit(self, item: ScoredSlice) -> None:
        if self._rows >= self.max_rows:
            self.blocked += 1
            try:
                while self._rows >= self.max_rows:
                    self._space.clear()
                    await self._space.wait()
            finally:
                self.blocked -= 1
        self._queue.append(item)
        self._rows += item.n_rows
        self._idle.clear()
        self._ready.set()

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            if not self._queue:
                continue
            items, self._queue = self._queue, []
            await self._write(items)
            self._rows -= sum(i.n_rows for i in items)
            self._space.set()
            if not self._queue:
                self._idle.set()

    def _owned(self, items: list[ScoredSlice]) -> list[ScoredSlice]:
        assigned = self.assigned()
        owned = [i for i in items if i.batch.tp in assigned]
        if len(owned) < len(items):
            self.dropped_revoked += len(items) - len(owned)
            log.info("%d slice(s) of revoked partitions dropped", len(items) - len(owned))
        return owned

    async def _write(self, items: list[ScoredSlice]) -> None:
        items = self._owned(items)
        if not items:
            return
        parts = [i.rows for i in items if i.rows is not None]
        # Predictions and dead letters acknowledged, rows in ClickHouse: both before the state.
        waits = [i.deliveries.done for i in items]
        if parts:
            waits.append(asyncio.ensure_future(self._insert(parts)))
        await asyncio.gather(*waits)
        items = self._owned(items)  # revoked while the insert ran: the new owner redoes them
        await self._write_changelog(items)
        for i in items:
            self.ack(i.batch)
        self.inserts += 1
        self.transactions += sum(i.n_rows for i in items)

    async def _insert(self, parts: list[ScoredRows]) -> None:
        # A retry of this same insert is skipped by ClickHouse (same token); a replay after a
        # crash groups differently and is collapsed by ReplacingMergeTree (query with FINAL).
        token = batch_token(
            "txn",
            parts[0].partition,
            min(p.offsets[0] for p in parts),
            max(p.offsets[-1] for p in parts),
            (t for p in parts for t in p.txn_ids),
        )

        def build() -> list[tuple[str, Any, str]]:
            rows = to_arrow(parts)
            # The served predictions are written here too, not by a view fed by transactions:
            # a retry ClickHouse deduplicated at the source never reached such a view again.
            predictions = rows.select(list(PREDICTION_COLUMN_NAMES))
            return [("transactions", rows, token), ("predictions", predictions, "pred:" + token)]

        await self.sink.insert_arrow(build)

    async def _write_changelog(self, items: list[ScoredSlice]) -> None:
        """Each key's latest state, filed under the partition of the events that changed it."""
        latest: dict[str, tuple[int, CardState | MerchantState]] = {}
        for i in items:
            for key, value in i.changes.items():
                latest[key] = (i.batch.partition, value)
        if not latest:
            return
        deliveries = Deliveries(asyncio.get_running_loop())
        topic = self.changelog_topic()
        # orjson: the json module's encoder was ~9% of the scoring loop at 1,000 events/s
        # (py-spy); the bytes are the same JSON Faust's table reads back.
        dumps = orjson.dumps
        send = self.changelog.send
        for key, (partition, value) in latest.items():
            send(topic, dumps(value.to_json()), deliveries, key=dumps(key), partition=partition)
        deliveries.seal(len(latest))
        await deliveries.done
