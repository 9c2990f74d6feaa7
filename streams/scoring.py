"""One partition's fetched transactions: decode, features, score, publish, hand to the writer.

The scoring path does only what a prediction needs; everything else is handed on without
waiting: rows and state changes to the writer (which acks once they are durable), the scored
batch to the learning thread (unsupervised learners, drift), dead letters to Kafka with the
batch's deliveries. It scores with the champion and a frozen snapshot of the learners, so
learning never holds it up. Work is cut into slices of `slice_size` events so that no stretch
of it keeps the loop from other partitions for long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from streamlearn.domain.features import CardState, MerchantState, compute
from streamlearn.foundation.clock import DAY_MS
from streamlearn.foundation.dead_letters import DeadLetter, DeadLetterWriter
from streamlearn.foundation.deliveries import Deliveries, TrackedProducer
from streamlearn.foundation.errors import InvalidRecord
from streamlearn.foundation.settings import Settings
from streamlearn.learners.learner_set import ScoredBatch
from streamlearn.schemas import SchemaError, Serde
from streamlearn.streams.batch import Batch
from streamlearn.streams.champion import Champion, ModelSlot
from streamlearn.streams.clock import EventClock
from streamlearn.streams.label_join import LabelJoin, logged_entry
from streamlearn.streams.learning import LearningThread
from streamlearn.streams.merchant_risk import MerchantRisk
from streamlearn.streams.rows import ScoredRows
from streamlearn.streams.stats import WorkerStats
from streamlearn.streams.validate import check_transaction
from streamlearn.streams.writer import BatchWriter, ScoredSlice

if TYPE_CHECKING:
    from streamlearn.streams.metrics import LatencyHistogram


@dataclass(slots=True)
class _Valid:
    """A decoded, valid transaction of the slice with where it came from."""

    txn: dict[str, Any]
    offset: int
    published_ms: float


@dataclass(slots=True)
class _Waiting:
    """A slice with its features computed, waiting for the round that scores it."""

    part: Batch
    valid: list[_Valid]
    vectors: list[list[float]]
    changes: dict[str, CardState | MerchantState]
    letters: int
    deliveries: Deliveries
    done: asyncio.Future[None]
    rows: ScoredRows | None = None  # once scored (None: no valid transaction)


class Scorer:
    """The scoring path of one worker; one instance serves every partition's actor."""

    def __init__(
        self,
        settings: Settings,
        *,
        table: Any,
        champion: Champion,
        learning: LearningThread,
        label_join: LabelJoin,
        merchant_risk: MerchantRisk,
        producer: TrackedProducer,
        dlq: DeadLetterWriter,
        writer: BatchWriter,
        stats: WorkerStats,
        txn_serde: Serde,
        prediction_serde: Serde,
    ) -> None:
        self.settings = settings
        self.table = table
        self.champion = champion
        self.learning = learning
        self.label_join = label_join
        self.merchant_risk = merchant_risk
        self.producer = producer
        self.dlq = dlq
        self.writer = writer
        self.stats = stats
        self.decode = txn_serde.decode
        self.encode = prediction_serde.encode
        self.topic = settings.topic("predictions")
        self.slice_size = settings.batch_size
        self.max_age_ms = settings.max_event_age_days * DAY_MS
        self.max_future_ms = settings.max_event_future_s * 1000
        # /metrics' latency histogram (streams/metrics.py), filled a slice at a time; None
        # with STREAMLEARN_METRICS_ENABLED=false.
        self.latency_histogram: LatencyHistogram | None = None
        self.clock = EventClock(settings.clock, self.max_future_ms)
        self._waiting: list[_Waiting] = []
        self._rounds: set[asyncio.Task[None]] = set()

    async def score(self, batch: Batch) -> None:
        """Score a partition's batch slice by slice; each slice is acked once durable."""
        for part in split(batch, self.slice_size):
            await self._score_slice(part)
            await asyncio.sleep(0)  # the other partitions' batches and timers get a turn

    async def _score_slice(self, part: Batch) -> None:
        """Features now; the scores in a round shared with the slices every other partition's
        actor handed in meanwhile. The actors of one fetch's batches all run before the round
        (it is scheduled behind them), so LightGBM, the learners' snapshot and HalfSpaceTrees
        run once per fetch, not once per partition: at 1,000 events/s a partition's batch is a
        few events, and those calls' fixed costs were most of the loop's work (py-spy)."""
        loop = asyncio.get_running_loop()
        deliveries = Deliveries(loop)
        valid, vectors, changes, letters = self._features(part, deliveries)
        waiting = _Waiting(part, valid, vectors, changes, letters, deliveries, loop.create_future())
        if not self._waiting:
            task = loop.create_task(self._round())
            self._rounds.add(task)
            task.add_done_callback(self._rounds.discard)
        self._waiting.append(waiting)
        await waiting.done

    async def _round(self) -> None:
        t_start = time.perf_counter()
        items, self._waiting = self._waiting, []
        try:
            scored = [i for i in items if i.valid]
            if scored:
                self._publish_all(scored)
            for i in items:
                i.deliveries.seal(len(i.valid) + i.letters)
                await self.writer.submit(ScoredSlice(i.part, i.rows, i.changes, i.deliveries))
                if not i.done.done():  # its actor may have been cancelled (a revocation)
                    i.done.set_result(None)
        except asyncio.CancelledError:
            for i in items:
                i.done.cancel()  # a no-op for those already done
            raise
        except Exception as exc:  # each waiting actor raises it: the worker stops (_guarded)
            for i in items:
                if not i.done.done():
                    i.done.set_exception(exc)
            return
        stats = self.stats
        stats.batches += len(items)
        stats.process_ms.append((time.perf_counter() - t_start) * 1000)

    def _features(
        self, part: Batch, deliveries: Deliveries
    ) -> tuple[list[_Valid], list[list[float]], dict[str, CardState | MerchantState], int]:
        """Decode and validate each record; features from the card's and merchant's state."""
        now_ms = int(time.time() * 1000)
        state = self.table.data
        rate, scored = self.merchant_risk.rate, self.merchant_risk.scored
        partition = part.partition
        changes: dict[str, CardState | MerchantState] = {}
        valid: list[_Valid] = []
        vectors: list[list[float]] = []
        letters = 0
        for record in part.records:
            try:
                txn = self.decode(record.value)
                now = self.clock.now(partition, txn.get("event_time"), now_ms)
                check_transaction(txn, now, self.max_age_ms, self.max_future_ms)
            except (SchemaError, InvalidRecord) as exc:
                self._dead_letter(part, record, exc, deliveries)
                letters += 1
                continue
            card_key = "c:" + txn["card_id"]
            merchant_key = f"m:{txn['merchant_id']}@{partition}"
            card = _card(state.get(card_key))
            if card is not None and card.already_applied(partition, record.offset, txn):
                # Scored when first applied (state reaches the changelog only after its
                # outputs are durable): scoring it again from a state that holds it would
                # log other features, so it is skipped and counted.
                self.stats.replayed_transactions += 1
                continue
            features, new_card, new_merchant = compute(
                txn,
                card,
                _merchant(state.get(merchant_key)),
                rate(txn["merchant_id"], txn["event_time"]),
                origin=(partition, record.offset),
            )
            scored(txn["merchant_id"], txn["event_time"])  # it matures into their history
            state[card_key] = changes[card_key] = new_card
            state[merchant_key] = changes[merchant_key] = new_merchant
            valid.append(_Valid(txn, record.offset, record.timestamp or now_ms))
            vectors.append(features)
        return valid, vectors, changes, letters

    def _dead_letter(
        self, part: Batch, record: Any, exc: Exception, deliveries: Deliveries
    ) -> None:
        stage = "decode" if isinstance(exc, SchemaError) else "validate"
        letter = DeadLetter(
            part.tp.topic, part.partition, record.offset, stage, str(exc), record.key, record.value
        )
        self.dlq.send(letter, deliveries)

    def _publish_all(self, items: list[_Waiting]) -> None:
        """Score the waiting slices at once, publish one Prediction per transaction, and give
        each slice its rows to store."""
        matrix = np.asarray([v for i in items for v in i.vectors], dtype=np.float64)
        champion, shadow = self.champion.slots()
        lgbm = self._metered(champion, matrix)
        shadow_scores = self._metered(shadow, matrix)
        columns, served, source = self.learning.snapshot.score(matrix, lgbm)
        if shadow_scores is not None:
            columns = {**columns, "shadow": shadow_scores}
        names = list(columns)
        score_matrix = np.column_stack([columns[n] for n in names])
        version = champion.version if champion is not None else "none"
        shadow_version = shadow.version if shadow is not None else None
        scored_at = int(time.time() * 1000)
        start = 0
        for i in items:
            end = start + len(i.valid)
            i.rows = ScoredRows(
                i.part.partition,
                [v.txn for v in i.valid],
                [v.offset for v in i.valid],
                matrix[start:end],
                names,
                score_matrix[start:end],
                served[start:end],
                self.learning.lr_name,
                version,
                shadow_version,
                scored_at,
            )
            self._send(i.rows, i.valid, i.deliveries, i.part.fetched_at)
            start = end
        release = champion.record if champion is not None else None
        self.learning.observe(ScoredBatch(matrix, served, source, scored_at, version, release))
        self.stats.predictions += len(matrix)

    def _send(
        self, rows: ScoredRows, valid: list[_Valid], deliveries: Deliveries, fetched_at: float
    ) -> None:
        """One Prediction per row; the logged features kept for the label join."""
        topic, encode, send = self.topic, self.encode, self.producer.send
        names, scored_at, river = rows.score_names, rows.scored_at_ms, rows.river_name
        learned = []
        for i, v in enumerate(valid):
            txn = v.txn
            scores = dict(zip(names, rows.score_matrix[i].tolist(), strict=True))
            served = float(rows.served[i])
            txn_id = txn["transaction_id"]
            record = {
                "transaction_id": txn_id,
                "event_time": txn["event_time"],
                "score": served,
                "model_version": rows.version,
                "lightgbm_score": scores.get("lightgbm"),
                "river_score": scores[river],
                "scores": scores,
                "scored_at": scored_at,
                "card_id": txn["card_id"],
                "shadow_version": rows.shadow_version,
            }
            send(topic, encode(record), deliveries, key=txn_id.encode())
            entry = logged_entry(rows.matrix[i], {**scores, "served": served}, txn)
            example = self.label_join.on_scored(txn_id, entry)
            if example is not None:
                learned.append(example)  # its outcome came first
        if learned:
            self.learning.learn_nowait(learned)
        # Publish (Kafka timestamp) to score: replays carry old event times.
        published = np.fromiter((v.published_ms for v in valid), np.float64, len(valid))
        self.stats.record_latencies(
            time.time(), scored_at - published, fetched_at * 1000 - published
        )
        if self.latency_histogram is not None:
            self.latency_histogram.observe_ms(scored_at - published)

    def _metered(self, slot: ModelSlot | None, matrix: np.ndarray) -> np.ndarray | None:
        """The slot's scores (None without one), its CPU time counted against its version.

        thread_time: the store and Kafka threads run meanwhile; LightGBM scores on this one.
        """
        if slot is None:
            return None
        cpu0 = time.thread_time()
        scores = slot.score(matrix)
        self.stats.record_inference(slot.version, time.thread_time() - cpu0, len(matrix))
        return scores


def split(batch: Batch, size: int) -> list[Batch]:
    """Slices of at most `size` records, each acking its own range; the last one carries the
    Faust message (its ack retires it)."""
    records = batch.records
    if len(records) <= size:
        return [batch]
    parts: list[Batch] = []
    first = batch.first
    for start in range(0, len(records), size):
        chunk: Sequence[Any] = records[start : start + size]
        last = chunk[-1].offset
        parts.append(Batch(batch.tp, chunk, first, last, fetched_at=batch.fetched_at))
        first = last + 1
    parts[-1].message = batch.message
    return parts


def _card(value: Any) -> CardState | None:
    """A card's state as the table holds it: ours, or the list a changelog recovery put back."""
    if value is None or isinstance(value, CardState):
        return value
    return CardState.from_json(value)


def _merchant(value: Any) -> MerchantState | None:
    if value is None or isinstance(value, MerchantState):
        return value
    return MerchantState.from_json(value)
