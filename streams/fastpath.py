"""Faust's fast path: a partition's share of each fetch reaches its actor as one event.

A bare Faust agent spends ~60-170 us of its own on every event (conductor, channel queue,
stream, ack bookkeeping). For the topics named here the consumer hands each partition's
fetched records to the partition's actor as a single `Batch` event, and the actor acks them
as one offset range once their outputs are durable. Faust keeps subscription, assignment,
rebalances, commits, tables (changelog recovery takes the usual per-message path), timers
and web. Holes are impossible by construction: records this loop does not deliver (flow
stopped, generation changed, or fetched before Faust sought the partition to its committed
offset after an assignment) are sought back, so every offset up to a batch's last is either
delivered once, in order, or does not exist (transaction markers, compaction).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from faust.serializers import codecs
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, ConsumerMessage
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streamlearn.streams.batch import Batch
from streamlearn.streams.continuity import Continuity
from streamlearn.streams.routing import routed

log = logging.getLogger(__name__)

BATCH_CODEC = "streamlearn-batch"
# How long a newly assigned partition's records wait for Faust's seek to its committed offset
# (it follows their partition's resumption within milliseconds here) before they go anyway.
SEEK_WAIT_S = 30.0


class _PassThrough(codecs.Codec):
    """The event value is the Batch object itself (never serialized: it never leaves memory)."""

    def _loads(self, s: Any) -> Any:
        return s

    def _dumps(self, s: Any) -> Any:
        return s


codecs.register(BATCH_CODEC, _PassThrough())


class _ShortPollThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with the broker's long poll bounded by fetch_max_wait_ms."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust fixes 1,500 ms. A fetch that holds only idle partitions (outcomes, say) while
        # the busy ones have records waiting to be handed out long-polls that long, and new
        # transactions wait behind it: p50 ~0.9 s and p99 ~1.9 s at 1,000 events/s (10 ms:
        # p50 68 ms, p99 234 ms).
        consumer._fetch_max_wait_ms = BatchConsumer.fetch_max_wait_ms
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose batch topics are delivered a fetch at a time."""

    batch_topics: frozenset[str] = frozenset()
    fetch_max_wait_ms = 10

    def _new_consumer_thread(self) -> Any:
        return _ShortPollThread(self, loop=self.loop, beacon=self.beacon)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_offset: dict[TP, int] = {}  # after the last batch handed out, per tp
        self._hole: dict[TP, int] = {}  # where a hole was sought back to, per tp
        self._sought: set[TP] = set()  # sought to the committed offset since assignment
        self._unsought_since: dict[TP, float] = {}  # since its records first waited, per tp
        self.continuity = Continuity()
        self.batches_delivered = 0
        self.sought_back = 0
        self.holes = 0  # offsets found missing and read again

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, ConsumerMessage]]:
        """Faust's getmany, except a batch topic's records come as one message per partition."""
        started = time.monotonic()
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return
        generation = self.app.consumer_generation_id
        if not self.flow_active:
            await self._seek_back(records)  # as Faust: fetched while stopping, read again
            return
        for tp, recs in list(records.items()):
            if not recs:
                continue
            if tp.topic in self.batch_topics and self.continuity.pending(
                tp, recs[0].offset, started
            ):
                continue  # fetched before the seek of a re-read that is asked for
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                await self._seek_back({tp: recs})  # paused meanwhile: read them again later
                continue
            if not self.flow_active or self.app.consumer_generation_id != generation:
                await self._seek_back({tp: recs})
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic in self.batch_topics:
                self._resume(tp)
                if not self._ready(tp):
                    await self._seek_back({tp: recs})
                    continue
                if await self._hole_sought(tp, recs[0].offset):
                    continue
                message = self._batch_message(tp, recs, generation)
                # Faust's drain compares a message's offset with the partition's read offset:
                # an older one is dropped, a jump is acked by itself as a "gap". A batch message
                # carries its first offset, so the read offset is set just below it.
                self._read_offset[tp] = message.offset - 1 if message.offset > 0 else None
                yield tp, message
            else:
                for i, record in enumerate(recs):
                    if not self.flow_active or self.app.consumer_generation_id != generation:
                        await self._seek_back({tp: recs[i:]})
                        break
                    yield tp, self._to_message(tp, record)

    async def admit(self, batch: Batch) -> Batch | None:
        """The batch as its actor takes it, or None: it does not follow the last batch taken
        from its partition, and is dropped unacked (streams/continuity.py)."""
        admitted, rewind = self.continuity.admit(batch, self._committed_offset.get(batch.tp))
        if admitted is None:
            self._unacked_messages.discard(batch.message)
        if rewind is not None:
            await self._rewind(batch.tp, rewind)
        return admitted

    async def _rewind(self, tp: TP, offset: int) -> None:
        try:
            await self.seek(tp, offset)
        except Exception as exc:  # revoked meanwhile, say: the next batch finds the gap again
            log.warning("%s: could not read again from %d: %r", tp, offset, exc)
            self.continuity.forget({tp})
        else:
            self.continuity.sought(tp, offset)

    def _resume(self, tp: TP) -> None:
        target = self.continuity.resume(tp)
        if target is not None:  # a re-read's first records: the batch after the last taken
            self._next_offset[tp] = target
            self._hole.pop(tp, None)

    def _ready(self, tp: TP) -> bool:
        """Whether tp's records may be handed out now, or must be read again later.

        Not before Faust has sought the partition to its committed offset after an assignment:
        it resumes a partition before that seek, and records handed out then would come again
        after it. Nor while the app's flow control is suspended: Faust resumes it only after
        that seek, and a stream skips, without acking, an event it reads meanwhile. The next
        batch would then follow on from the skipped one, and its range be lost. Nor before
        Faust's conductor routes the partition to a live stream (streams/routing.py).
        """
        if not self.app.flow_control.is_active():
            return False
        if tp not in self._sought and not self._seek_overdue(tp):
            return False
        return routed(self.app.topics, tp, self.assignment())

    def _seek_overdue(self, tp: TP) -> bool:
        """True once tp's records have waited too long for Faust's seek: they are then handed
        out from where the consumer stands (the committed offset it started from), so that a
        seek that never comes cannot stall the partition."""
        now = time.monotonic()
        if now - self._unsought_since.setdefault(tp, now) < SEEK_WAIT_S:
            return False
        log.warning("%s: not sought to its committed offset in %.0f s; going on", tp, SEEK_WAIT_S)
        self._sought.add(tp)
        return True

    async def _hole_sought(self, tp: TP, offset: int) -> bool:
        """True if this batch does not follow the last one handed out (or the committed offset)
        and was sought back to the first missing offset instead of being delivered.

        Acking across a hole would commit offsets nobody scored, so a hole is read again once;
        a hole still there after that holds offsets that do not exist (transaction markers,
        compaction) and is acked across. A batch below the expected offset is a re-read (the
        consumer was sought back, e.g. to the committed offset on a reassignment): it starts
        a new run.
        """
        expected = self._next_offset.get(tp)
        if expected is not None and offset < expected:
            del self._next_offset[tp]
            expected = None
        if expected is None:
            expected = self._committed_offset.get(tp)
        if expected is None or offset <= expected:
            self._hole.pop(tp, None)
            return False
        if self._hole.get(tp) == expected:
            log.warning("%s: offsets %d..%d do not exist; going on", tp, expected, offset - 1)
            self._hole.pop(tp, None)
            return False
        log.warning("%s: offsets %d..%d were not delivered; read again", tp, expected, offset - 1)
        self._hole[tp] = expected
        self.holes += 1
        await self.seek(tp, expected)
        return True

    def _batch_message(self, tp: TP, recs: Sequence[Any], generation: int) -> ConsumerMessage:
        committed = self._committed_offset.get(tp)
        start = recs[0].offset
        # The ack covers what lies between the last batch (or the committed offset) and this
        # one: _hole_sought has made sure nothing undelivered is in there.
        first = self._next_offset.get(tp, committed if committed is not None else start)
        first = min(first, start)
        last = recs[-1].offset
        self._next_offset[tp] = last + 1
        self.batches_delivered += 1
        batch = Batch(tp, recs, first, last, fetched_at=time.time())
        batch.message = ConsumerMessage(
            tp.topic,
            tp.partition,
            first,
            recs[-1].timestamp / 1000.0 if recs[-1].timestamp is not None else 0.0,
            0,
            None,
            None,
            batch,  # type: ignore[arg-type]  # the batch codec passes it through
            None,
            0,
            sum(len(r.value or b"") for r in recs),
            tp,
            generation_id=generation,
        )
        return batch.message

    async def _seek(self, partition: TP, offset: int) -> None:
        """Seek on the consumer thread's loop, where aiokafka's fetcher runs.

        Faust calls aiokafka's `seek` straight from this loop's thread. aiokafka is not
        thread-safe: that mutates the fetcher's record buffer while the consumer thread may be
        storing a fetch response into it, and resolves the fetcher's futures from a thread that
        does not own them (a future resolved so does not wake the loop waiting on it).
        """
        thread = self._thread

        async def seek() -> None:  # run by the consumer thread
            thread.seek(partition, offset)

        await thread.call_thread(seek)

    async def _seek_back(self, records: Mapping[TP, Sequence[Any]]) -> None:
        for tp, recs in records.items():
            if recs and tp.topic in self.batch_topics:
                self.sought_back += 1
                # _next_offset stays: everything below it was handed out, and the records
                # sought back are the next to come. Forgetting it would check the next batch
                # against the committed offset, which lags what was handed out, and read the
                # batches in between as a hole (delivered twice).
                # A re-read asked for (streams/continuity.py) wins over these records' place.
                await self.seek(tp, self.continuity.rewinds.get(tp, recs[0].offset))

    def ack_batch(self, batch: Batch) -> int:
        """Ack every offset of the batch's range (the batch's records and any that do not
        exist before them); Faust commits up to there once the earlier ranges are acked too."""
        tp = batch.tp
        n = 0
        with ack_lock:
            committed = self._committed_offset.get(tp)
            acked_index = self._acked_index[tp]
            acked = self._acked[tp]
            start = batch.first if committed is None else max(batch.first, committed)
            for offset in range(start, batch.last + 1):
                if offset not in acked_index:
                    acked_index.add(offset)
                    acked.append(offset)
                    n += 1
            self._n_acked += n
            message = batch.message
            if message is not None:
                message.acked = True
                self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
        return n

    async def perform_seek(self) -> None:
        """Faust's seek of every assigned partition to its committed offset, after which
        a batch topic's partitions are handed out."""
        generation = self.app.consumer_generation_id
        await super().perform_seek()
        if self.app.consumer_generation_id == generation:  # else the next rebalance seeks again
            self._sought.update(self.assignment())

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self.continuity.forget(revoked)
        for tp in revoked:
            self._next_offset.pop(tp, None)
            self._sought.discard(tp)
            self._unsought_since.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self.continuity.forget(assigned)
        for tp in assigned:
            self._next_offset.pop(tp, None)  # start from the committed offset again
            self._hole.pop(tp, None)
            self._sought.discard(tp)
            self._unsought_since.pop(tp, None)
            # Faust's cache of a partition this member held before may be stale: a commit in
            # flight at the revocation writes its offset back after the revocation cleared it,
            # and another member has moved the partition on since. Checked against that, the
            # first batch reads as a hole and offsets the other member dealt with are read
            # again (outcomes learned twice). perform_seek sets the broker's offset.
            self._committed_offset.pop(tp, None)
        await super().on_partitions_assigned(assigned, generation_id)


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer


def consumer_of(app: Any) -> BatchConsumer:
    """The app's consumer (a BatchConsumer once `install` ran)."""
    consumer = app.consumer
    assert isinstance(consumer, BatchConsumer), "fastpath.install was not called"
    return consumer


def install(app: Any, topics: Sequence[str], fetch_max_wait_ms: int = 10) -> None:
    """Make `app` consume `topics` a fetch at a time (call before the app starts), the
    broker holding an empty fetch at most fetch_max_wait_ms."""
    BatchConsumer.batch_topics = frozenset(topics)
    BatchConsumer.fetch_max_wait_ms = fetch_max_wait_ms
    app.transport = BatchTransport(app.conf.broker_consumer, app)


async def yield_now() -> None:
    """Let the loop run other callbacks (a bounded slice of work is done)."""
    await asyncio.sleep(0)
