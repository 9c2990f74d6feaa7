"""A partition's fetched outcomes: store them, join them with what was served, learn.

Every valid outcome is stored in `streamlearn.outcomes` (idempotent: dedup token, and
ReplacingMergeTree). It is then joined with the features and scores logged when its
transaction was scored (the label join; ClickHouse for transactions no longer in memory) and
handed to the learning thread. The batch is acked only once a written learner checkpoint
covers it (streams/outcome_acks.py): a crash then redelivers exactly what the restored
learners have not learned. Work runs in slices with a yield between them: a backlog of
outcomes never holds the loop for long.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from array import array
from typing import Any

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.foundation.clock import DAY_MS, utc
from streamlearn.foundation.dead_letters import DeadLetter, DeadLetterWriter
from streamlearn.foundation.deliveries import Deliveries, TrackedProducer
from streamlearn.foundation.errors import InvalidRecord
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import batch_token
from streamlearn.schemas import SchemaError, Serde
from streamlearn.streams.batch import Batch
from streamlearn.streams.clock import EventClock
from streamlearn.streams.label_join import UNLEARNED_COLUMNS, Example, LabelJoin, Logged
from streamlearn.streams.learning import LearningThread
from streamlearn.streams.pending import Parked
from streamlearn.streams.sink import StoreSink
from streamlearn.streams.stats import WorkerStats
from streamlearn.streams.validate import check_outcome, outcome_max_age_days

OUTCOME_COLUMNS = (
    "transaction_id",
    "is_fraud",
    "event_time",
    "received_at",
    "source_partition",
    "source_offset",
)
SLICE = 200  # outcomes decoded or joined between two yields to the loop
RESOLVE_MAX = 5000  # parked outcomes looked up in the store per sweep

LOOKUP_SQL = """
SELECT transaction_id, merchant_id, toUnixTimestamp64Milli(event_time) AS event_ms,
       arrayMap(n -> features[n], {names:Array(String)}) AS vector,
       scores, score
FROM streamlearn.transactions
WHERE transaction_id IN {ids:Array(String)}
LIMIT 1 BY transaction_id
"""


class Outcomes:
    """The outcomes agent's work, one instance for every partition's batches."""

    def __init__(
        self,
        settings: Settings,
        *,
        sink: StoreSink,
        label_join: LabelJoin,
        learning: LearningThread,
        dlq: DeadLetterWriter,
        stats: WorkerStats,
        serde: Serde,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.join = label_join
        self.learning = learning
        self.dlq = dlq
        self.stats = stats
        self.decode = serde.decode
        self.covered: dict[int, int] = {}  # partition -> last offset whose work is enqueued
        self.restored: dict[int, int] = {}  # what the restored checkpoint covered
        self.skipped = 0  # outcomes at or below the restored checkpoint's offsets
        self.handed_over = 0  # parked outcomes put back on their topic at a handover
        self.max_age_ms = int(
            outcome_max_age_days(settings.max_event_age_days, settings.label_horizon_days) * DAY_MS
        )
        self.max_future_ms = settings.max_event_future_s * 1000
        self.clock = EventClock(settings.clock, self.max_future_ms)

    async def process(self, batch: Batch) -> None:
        """Store the batch's valid outcomes, learn each once from what was served for it."""
        valid, rows = await self._decode(batch)
        if rows:
            token = batch_token(
                "outcome", batch.partition, batch.first, batch.last, (r[0] for r in rows)
            )
            await self.sink.insert("outcomes", rows, OUTCOME_COLUMNS, token)
            self.stats.outcomes += len(rows)
        if valid:
            await self._learn(valid, batch.partition)
        await self.flush_unlearned()
        # Covered once everything above is enqueued: a checkpoint requested from now on is
        # taken after the learning thread has learned it all.
        self.covered[batch.partition] = batch.last

    async def _decode(self, batch: Batch) -> tuple[list[tuple[dict[str, Any], int]], list[list]]:
        now_ms = int(time.time() * 1000)
        received = dt.datetime.now(dt.UTC)
        deliveries = Deliveries(asyncio.get_running_loop())
        letters = 0
        valid: list[tuple[dict[str, Any], int]] = []
        rows: list[list[Any]] = []
        restored = self.restored.get(batch.partition, -1)
        for i, record in enumerate(batch.records):
            if i % SLICE == SLICE - 1:
                await asyncio.sleep(0)
            try:
                outcome = self.decode(record.value)
                now = self.clock.now(batch.partition, outcome.get("event_time"), now_ms)
                check_outcome(outcome, now, self.max_age_ms, self.max_future_ms)
            except (SchemaError, InvalidRecord) as exc:
                stage = "decode" if isinstance(exc, SchemaError) else "validate"
                letter = DeadLetter(
                    batch.tp.topic,
                    batch.partition,
                    record.offset,
                    stage,
                    str(exc),
                    record.key,
                    record.value,
                )
                self.dlq.send(letter, deliveries)
                letters += 1
                continue
            if record.offset <= restored:
                self.skipped += 1  # learned before the restored checkpoint was written
            else:
                valid.append((outcome, record.offset))
            rows.append(
                [
                    outcome["transaction_id"],
                    outcome["is_fraud"],
                    utc(outcome["event_time"]),
                    received,
                    batch.partition,
                    record.offset,
                ]
            )
        deliveries.seal(letters)
        await deliveries.done
        return valid, rows

    async def _learn(self, valid: list[tuple[dict[str, Any], int]], partition: int) -> None:
        found: dict[str, Logged] = {}
        missing = []
        for outcome, _ in valid:
            txn_id = outcome["transaction_id"]
            entry = self.join.take(txn_id)
            if entry is not None:
                found[txn_id] = entry
            elif txn_id not in found:
                missing.append(txn_id)
        if missing:
            found.update(await self.lookup(missing))
        examples: list[Example] = []
        now_ms = int(time.time() * 1000)
        for i, (outcome, offset) in enumerate(valid):
            if i % SLICE == SLICE - 1:
                await asyncio.sleep(0)
            txn_id = outcome["transaction_id"]
            is_fraud = bool(outcome["is_fraud"])
            parked = Parked(is_fraud, outcome["event_time"], now_ms, partition, offset)
            # Scored while the look-up ran: taken from pending now, not parked for good.
            entry = found.get(txn_id) or self.join.take(txn_id)
            if entry is None:
                self.join.park(txn_id, parked)
                continue
            example = self.join.join(txn_id, entry, parked)
            if example is not None:
                examples.append(example)
        if examples:
            await self.learning.learn(examples)

    async def lookup(self, ids: list[str]) -> dict[str, Logged]:
        """Features and scores logged for transactions no longer held in memory."""
        store = self.sink.reads.store
        table = await self.sink.read(
            store.query_arrow, LOOKUP_SQL, {"names": list(FEATURE_NAMES), "ids": ids}
        )
        out: dict[str, Logged] = {}
        for r in table.to_pylist():
            scores = dict(r["scores"]) if r["scores"] is not None else {}
            out[r["transaction_id"]] = (
                array("d", r["vector"]),
                {**scores, "served": r["score"]},
                r["merchant_id"],
                int(r["event_ms"]),
            )
        return out

    async def resolve_parked(self) -> int:
        """Parked outcomes whose transaction is now in the store (scored by another worker or
        before a crash) are learned; those that waited too long are recorded as unknown."""
        parked = self.join.early.oldest(RESOLVE_MAX)
        if parked:
            found = await self.lookup([txn_id for txn_id, _ in parked])
            now_ms = int(time.time() * 1000)
            examples = []
            for txn_id, p in parked:
                if self.join.early.get(txn_id) is not p:
                    continue  # joined by scoring while the look-up ran
                entry = found.get(txn_id)
                if entry is not None:
                    self.join.early.pop(txn_id)
                    example = self.join.join(txn_id, entry, p)
                    if example is not None:
                        examples.append(example)
                else:
                    self.join.give_up(txn_id, p, now_ms)
            if examples:
                await self.learning.learn(examples)
        return await self.flush_unlearned()

    async def hand_over(self, producer: TrackedProducer, serde: Serde) -> int:
        """Put the parked outcomes back on their topic before partitions move (a rebalance or
        a stop): whoever owns the partition next reads them again and joins them, instead of
        their waiting forever in the checkpoint of a worker that may not come back."""
        parked = self.join.early.oldest(len(self.join.early))
        if not parked:
            return 0
        deliveries = Deliveries(asyncio.get_running_loop())
        topic = self.settings.topic("outcomes")
        for txn_id, p in parked:
            record = {"transaction_id": txn_id, "is_fraud": p.is_fraud, "event_time": p.outcome_ms}
            producer.send(topic, serde.encode(record), deliveries, key=txn_id.encode())
        deliveries.seal(len(parked))
        await deliveries.done
        for txn_id, _ in parked:
            self.join.early.pop(txn_id)
        self.handed_over += len(parked)
        return len(parked)

    async def flush_unlearned(self) -> int:
        """Store the expired/unknown outcomes decided so far (idempotent: keyed by origin)."""
        rows = list(self.join.unlearned)
        if not rows:
            return 0
        token = batch_token(
            "unlearned",
            rows[0][5],
            rows[0][6],
            rows[-1][6],
            (f"{r[0]}/{r[4]}/{r[6]}" for r in rows),
        )
        await self.sink.insert("unlearned_outcomes", rows, UNLEARNED_COLUMNS, token)
        del self.join.unlearned[: len(rows)]
        return len(rows)
