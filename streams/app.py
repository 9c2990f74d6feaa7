"""The Faust app: topics, the changelog-backed feature table, agents, timers and web views."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from typing import Any

import faust

from streamlearn.kafka import faust_broker_options
from streamlearn.settings import Settings
from streams.context import WorkerContext
from streams.learning import learn_batch, resolve_parked
from streams.merchant_risk import REFRESH_SQL
from streams.offsets import OffsetGuard, admit_or_seek
from streams.online import flush_drift, flush_online_metrics, save_checkpoint_now
from streams.outcome_acks import release
from streams.scoring import TXN_COLUMNS, score_batch
from streams.usage import UsageMeter, flush_usage
from streams.web import register_views
from streams.writer import BatchWriter

log = logging.getLogger(__name__)
DRIFT_INTERVAL_S = 5.0
METRICS_INTERVAL_S = 60.0
OUTCOME_BATCH_WITHIN_S = 1.0
PARKED_INTERVAL_S = 30.0  # outcomes waiting for their transaction: store lookup, expiry


def build_app(settings: Settings, ctx: WorkerContext) -> faust.App:
    """A Faust app wired to the worker context; nothing runs until a faust.Worker starts it."""
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.topic_prefix}streamlearn",
        **faust_broker_options(settings),
        store="memory://",
        datadir=str(settings.state_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_host="127.0.0.1",
        web_port=settings.web_port,
        web_bind="127.0.0.1",
        stream_buffer_maxsize=max(4096, 4 * settings.batch_size),
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        producer_linger=0.005,
        table_cleanup_interval=3600,
        # Unacked events are simply processed again after a restart; waiting for them at
        # shutdown would hang when the writer that acks them has stopped.
        stream_wait_empty=False,
    )
    transactions = app.topic(
        settings.topic("transactions"), key_serializer="raw", value_serializer="raw"
    )
    outcomes = app.topic(settings.topic("outcomes"), key_serializer="raw", value_serializer="raw")
    # Per-card state ("c:<card>") and per-merchant state of this partition ("m:<merchant>@<p>"):
    # one changelog, each change filed under the partition of the transaction that made it.
    ctx.table = app.Table(
        "features",
        default=None,
        partitions=settings.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )

    txn_guard = OffsetGuard(settings.topic("transactions"))
    outcome_guard = OffsetGuard(settings.topic("outcomes"))
    ctx.offset_guards = (txn_guard, outcome_guard)

    # One actor per partition: a batch never mixes partitions, so every table change lands in
    # the changelog partition of the events that caused it. noack_take: an event is acked by
    # the writer once its outputs are durable, never by Faust when the batch is handed out.
    @app.agent(transactions, isolated_partitions=True)
    async def score(stream: Any) -> None:
        async for events in stream.noack_take(settings.batch_size, within=settings.batch_within):
            if not await admit_or_seek(txn_guard, events):
                continue
            try:
                await score_batch(ctx, stream, events)
            except Exception as exc:
                _fatal("scoring", exc)
                raise

    @app.agent(outcomes)
    async def learn(stream: Any) -> None:
        # Up to a second per batch: each batch costs an insert and a lookup on the store
        # connection the scoring writer needs too, and outcomes are not latency-critical.
        async for events in stream.noack_take(1000, within=OUTCOME_BATCH_WITHIN_S):
            if not await admit_or_seek(outcome_guard, events):
                continue
            try:
                await learn_batch(ctx, events)
            except Exception as exc:
                _fatal("learning", exc)
                raise
            # Acked once a learner checkpoint covers them (checkpoint_learners below): an
            # outcome committed but learned only in memory would be lost by a crash.
            ctx.held_outcomes.hold(stream, events)

    ctx.writer = BatchWriter(ctx, TXN_COLUMNS)

    @app.on_partitions_revoked.connect
    async def on_revoked(_app: Any, revoked: set, **_kwargs: Any) -> None:
        for guard in (txn_guard, outcome_guard):
            guard.forget({tp.partition for tp in revoked if tp.topic == guard.topic})
        ctx.held_outcomes.forget(
            {tp.partition for tp in revoked if tp.topic == outcome_guard.topic}
        )

    @app.task
    async def write() -> None:
        try:
            await ctx.writer.run()
        except Exception as exc:
            _fatal("writing", exc)
            raise

    @app.timer(interval=settings.merchant_risk_refresh_s)
    async def refresh_merchant_risk() -> None:
        await refresh_merchant_risk_now(ctx)

    @app.timer(interval=1.0)
    async def mark_rate() -> None:
        ctx.stats.mark()

    usage = UsageMeter(f"{settings.worker_id}@{socket.gethostname()}:{os.getpid()}")

    # Inference cost to streamlearn.model_usage (once a minute by default).
    @app.timer(interval=settings.usage_flush_s)
    async def write_usage() -> None:
        await flush_usage(ctx, usage)

    # Online learning: drift events every few seconds, metrics each minute, checkpoints.
    @app.timer(interval=DRIFT_INTERVAL_S)
    async def write_drift() -> None:
        await flush_drift(ctx)

    @app.timer(interval=METRICS_INTERVAL_S)
    async def write_online_metrics() -> None:
        await flush_online_metrics(ctx, usage.worker)

    @app.timer(interval=settings.learner_checkpoint_s)
    async def checkpoint_learners() -> None:
        await save_checkpoint_now(ctx)
        online = ctx.online
        # Without a checkpoint file (none configured) nothing could ever cover them: ack all.
        await release(
            ctx.held_outcomes,
            online.saved_covered if online.checkpoint_path is not None else online.covered,
            app.consumer.assignment,
        )

    @app.timer(interval=min(PARKED_INTERVAL_S, settings.early_outcome_wait_s))
    async def sweep_parked_outcomes() -> None:
        await resolve_parked(ctx)

    register_views(app, ctx)
    return app


async def refresh_merchant_risk_now(ctx: WorkerContext) -> None:
    _, rows = await ctx.sink.call(ctx.store.query_rows, REFRESH_SQL)
    ctx.merchant_risk.replace(rows)


def _fatal(stage: str, exc: BaseException) -> None:
    """A bug, not bad input: stop the worker; unacked events are processed again on restart."""
    log.critical("%s failed, stopping the worker: %r", stage, exc, exc_info=exc)
    os.kill(os.getpid(), signal.SIGTERM)
    # If the graceful stop hangs, leave anyway: nothing unacked is lost, only redone.
    timer = threading.Timer(30.0, os._exit, args=(70,))
    timer.daemon = True
    timer.start()
