"""The Faust app: topics, the changelog-backed feature table, agents, timers and web views."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import faust

from streamlearn.foundation.dead_letters import store_rows
from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.foundation.kafka import faust_broker_options, topic_config
from streamlearn.foundation.settings import Settings
from streamlearn.streams import fastpath
from streamlearn.streams.draining import DrainingApp, within
from streamlearn.streams.failure import fatal
from streamlearn.streams.learning import CheckpointRequest
from streamlearn.streams.merchant_risk import REFRESH_SQL
from streamlearn.streams.metrics import DriftCounts, worker_metrics
from streamlearn.streams.monitoring import flush_online_metrics
from streamlearn.streams.outcome_acks import release
from streamlearn.streams.parts import WorkerParts
from streamlearn.streams.scoring import Scorer
from streamlearn.streams.state_bounds import drop_foreign
from streamlearn.streams.usage import UsageMeter, flush_usage
from streamlearn.streams.web import StatusCache, register_views
from streamlearn.streams.writer import BatchWriter

log = logging.getLogger(__name__)
DRIFT_INTERVAL_S = 5.0
DEAD_LETTERS_INTERVAL_S = 5.0
METRICS_INTERVAL_S = 60.0
PARKED_INTERVAL_S = 30.0  # outcomes waiting for their transaction: store lookup, expiry


@dataclass
class Running:
    """What exists once the app is built: the Faust objects and the parts wired to them."""

    app: DrainingApp
    table: Any
    scorer: Scorer
    writer: BatchWriter
    drift: DriftCounts = field(default_factory=DriftCounts)  # reported, by kind (/metrics)


def build_app(settings: Settings, parts: WorkerParts) -> Running:
    """A Faust app wired to the worker's parts; nothing runs until a faust.Worker starts it."""
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = _new_app(settings)
    txn_topic, outcome_topic = settings.topic("transactions"), settings.topic("outcomes")
    fastpath.install(app, [txn_topic, outcome_topic], settings.fetch_max_wait_ms)
    transactions = app.topic(txn_topic, value_serializer=fastpath.BATCH_CODEC)
    outcomes = app.topic(outcome_topic, value_serializer=fastpath.BATCH_CODEC)
    # Per-card state ("c:<card>") and per-merchant state of this partition ("m:<merchant>@<p>"):
    # one changelog, each change filed under the partition of the transaction that made it.
    table = app.Table(
        "features",
        default=None,
        partitions=settings.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
        extra_topic_configs=topic_config(settings),
    )

    def consumer() -> fastpath.BatchConsumer:  # created when the app starts
        return fastpath.consumer_of(app)

    writer = BatchWriter(
        parts.sink,
        parts.changelog,
        changelog_topic=lambda: table.changelog_topic.get_topic_name(),
        ack=lambda batch: consumer().ack_batch(batch),
        assigned=lambda: consumer().assignment(),
        max_rows=settings.store_max_pending_rows,
    )
    app.writer = writer
    scorer = Scorer(
        settings,
        table=table,
        champion=parts.champion,
        learning=parts.learning,
        label_join=parts.label_join,
        merchant_risk=parts.merchant_risk,
        producer=parts.predictions,
        dlq=parts.dlq,
        writer=writer,
        stats=parts.stats,
        txn_serde=parts.serdes.transaction,
        prediction_serde=parts.serdes.prediction,
    )
    running = Running(app, table, scorer, writer)
    _agents(app, transactions, outcomes, running, parts)
    _timers(app, settings, running, parts)
    return running


def _new_app(settings: Settings) -> DrainingApp:
    app = DrainingApp(
        f"{settings.topic_prefix}streamlearn",
        **faust_broker_options(settings),
        store="memory://",
        datadir=str(settings.state_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_host=socket.gethostname() if _unspecified(settings.web_bind) else settings.web_bind,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        # Each event is a partition's share of a fetch (streams/fastpath.py): a few of them
        # buffered per partition is thousands of transactions.
        stream_buffer_maxsize=8,
        broker_max_poll_records=settings.batch_size * 4,
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        table_cleanup_interval=3600,
        # Faust's own wait counts unacked events; DrainingApp drains the agents and the
        # writer itself, on a stop and on a rebalance.
        stream_wait_empty=False,
    )
    app.drain_s = settings.shutdown_drain_s
    # Half the time the group gives members to rejoin: the drain must not make us miss it.
    app.rebalance_drain_s = min(20.0, 0.5 * float(app.conf.broker_rebalance_timeout))
    return app


def _unspecified(address: str) -> bool:
    return ipaddress.ip_address(address).is_unspecified  # 0.0.0.0, ::: every interface


async def _guarded(app: DrainingApp, stage: str, work: Awaitable[Any]) -> None:
    """Await one event's work, counted in flight for the drain; a failure stops the worker."""
    app.in_flight += 1
    try:
        await work
    except Exception as exc:
        fatal(stage, exc)
        raise
    finally:
        app.in_flight -= 1


def _agents(
    app: DrainingApp, transactions: Any, outcomes: Any, running: Running, parts: WorkerParts
) -> None:
    # One actor per partition: a batch never mixes partitions, so every table change lands in
    # the changelog partition of the events that caused it. noack: the writer acks a slice's
    # offsets once its outputs are durable, never Faust when the batch is handed out.
    @app.agent(transactions, isolated_partitions=True)
    async def score(stream: Any) -> None:
        async for event in stream.noack().events():
            batch = await fastpath.consumer_of(app).admit(event.value)
            if batch is not None:
                await _guarded(app, "scoring", running.scorer.score(batch))

    @app.agent(outcomes)
    async def learn(stream: Any) -> None:
        async for event in stream.noack().events():
            batch = await fastpath.consumer_of(app).admit(event.value)
            if batch is None:
                continue
            await _guarded(app, "learning", parts.outcomes.process(batch))
            # Acked once a learner checkpoint covers it: an outcome committed but learned only
            # in memory would be lost by a crash.
            parts.held.hold(batch)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust types it sync
    async def on_revoked(_app: Any, revoked: set, **_kwargs: Any) -> None:
        parts.held.forget({tp.partition for tp in revoked if tp.topic == outcomes.get_topic_name()})

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # faust types it sync
    async def on_assigned(_app: Any, assigned: set, **_kwargs: Any) -> None:
        # Before recovery and before scoring resumes: card and merchant state of partitions
        # that went to another worker leaves memory (its changelog keeps it for them).
        topic = transactions.get_topic_name()
        owned = {tp.partition for tp in assigned if tp.topic == topic}
        dropped = drop_foreign(running.scorer.table.data, owned)
        parts.stats.foreign_state_dropped += dropped
        if dropped:
            log.info("state of %d cards/merchants of partitions now elsewhere dropped", dropped)

    @app.task
    async def write() -> None:
        try:
            await running.writer.run()
        except Exception as exc:
            fatal("writing", exc)
            raise


def _timers(app: DrainingApp, settings: Settings, running: Running, parts: WorkerParts) -> None:
    usage = UsageMeter(f"{settings.worker_id}@{socket.gethostname()}:{os.getpid()}")
    status = StatusCache(parts, running)
    register_views(app, parts, running, status, worker_metrics(parts, running))
    _checkpoints(app, settings, parts, status, usage)

    @app.timer(interval=settings.merchant_risk_refresh_s)
    async def refresh_merchant_risk() -> None:
        await refresh_merchant_risk_now(parts)

    @app.timer(interval=1.0)
    async def mark_rate() -> None:
        parts.stats.mark()
        status.refresh()

    @app.timer(interval=settings.usage_flush_s)
    async def write_usage() -> None:
        await flush_usage(parts.sink, parts.stats, usage)

    @app.timer(interval=DRIFT_INTERVAL_S)
    async def write_drift() -> None:
        await parts.drift.flush(running.drift.add(parts.learning.take_drift()))

    @app.timer(interval=DEAD_LETTERS_INTERVAL_S)  # streamlearn.dead_letters, idempotent
    async def write_dead_letters() -> None:
        await store_rows(parts.dlq.rows, parts.sink.insert)

    @app.timer(interval=METRICS_INTERVAL_S)
    async def write_online_metrics() -> None:
        snapshot = parts.learning.published.status.get("online_metrics", {})
        await flush_online_metrics(parts.sink, snapshot, usage.worker)

    @app.timer(interval=min(PARKED_INTERVAL_S, settings.early_outcome_wait_s))
    async def sweep_parked_outcomes() -> None:
        await parts.outcomes.resolve_parked()


def _checkpoints(
    app: DrainingApp,
    settings: Settings,
    parts: WorkerParts,
    status: StatusCache,
    usage: UsageMeter,
) -> None:
    """The learning thread, its checkpoints, and the outcome acks they release."""

    def saved(covered: dict[int, int] | None) -> None:
        if covered is None:  # the learning thread failed
            fatal("learning thread", parts.learning.failed or RuntimeError("stopped"))
            return
        # /status shows what the checkpoint covers before any of it is acked (and committed).
        status.refresh()
        consumer = fastpath.consumer_of(app)
        release(parts.held, covered, consumer.ack_batch, consumer.assignment)

    def request_checkpoint() -> None:
        join = parts.label_join
        parts.learning.request_checkpoint(
            CheckpointRequest(
                covered=dict(parts.outcomes.covered),
                parked=join.early.oldest(len(join.early)),
                counters=dict(join.counters),
                unlearned=list(join.unlearned),
            )
        )

    async def checkpoint_now() -> None:
        """Before partitions move (a stop or a rebalance): parked outcomes go back on their
        topic, then a checkpoint covers every outcome dealt with and acks it before the
        commit, so nothing is re-read as a repeat and nothing waits in a leaving worker."""
        await parts.outcomes.hand_over(parts.predictions, parts.serdes.outcome)
        request_checkpoint()
        published = parts.learning.published
        while published.saved_covered != parts.outcomes.covered:
            await asyncio.sleep(0.05)
        consumer = fastpath.consumer_of(app)
        release(parts.held, published.saved_covered, consumer.ack_batch, consumer.assignment)

    async def on_drained() -> None:
        await checkpoint_now()
        if app.should_stop:  # the last cost and metrics too, bounded: a store outage
            metrics = parts.learning.published.status.get("online_metrics", {})
            last = flush_online_metrics(parts.sink, metrics, usage.worker)
            flushes = asyncio.gather(flush_usage(parts.sink, parts.stats, usage), last)
            if not await within(flushes, 5.0):
                log.warning("the last inference cost and online metrics were not written")

    app.on_drained = on_drained

    @app.task
    async def start_learning() -> None:
        parts.learning.start(asyncio.get_running_loop(), saved)

    @app.timer(interval=settings.learner_checkpoint_s)
    async def checkpoint_learners() -> None:
        request_checkpoint()


async def refresh_merchant_risk_now(parts: WorkerParts) -> None:
    store = parts.sink.reads.store
    try:
        _, rows = await parts.sink.reads.call(store.query_rows, REFRESH_SQL)
    except StoreUnavailable as exc:
        # Store outage: keep serving the last rates; the next refresh tries again.
        log.warning("merchant fraud rates not refreshed: %s", exc)
        return
    parts.merchant_risk.replace(rows)
