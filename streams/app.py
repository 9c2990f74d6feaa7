"""The Faust app: topics, the changelog-backed feature table, agents, timers and web views."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from typing import Any

import faust

from streamlearn.foundation.dead_letters import store_rows
from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.foundation.kafka import faust_broker_options
from streamlearn.foundation.settings import Settings
from streamlearn.streams.context import WorkerContext
from streamlearn.streams.learning import learn_batch, resolve_parked
from streamlearn.streams.merchant_risk import REFRESH_SQL
from streamlearn.streams.offsets import OffsetGuard, admit_or_seek
from streamlearn.streams.online import flush_drift, flush_online_metrics, save_checkpoint_now
from streamlearn.streams.outcome_acks import release
from streamlearn.streams.scoring import TXN_COLUMNS, score_batch
from streamlearn.streams.usage import UsageMeter, flush_usage
from streamlearn.streams.web import register_views
from streamlearn.streams.writer import BatchWriter

log = logging.getLogger(__name__)
DRIFT_INTERVAL_S = 5.0
DEAD_LETTERS_INTERVAL_S = 5.0
METRICS_INTERVAL_S = 60.0
OUTCOME_BATCH_WITHIN_S = 1.0
PARKED_INTERVAL_S = 30.0  # outcomes waiting for their transaction: store lookup, expiry


class DrainingApp(faust.App):
    """faust.App whose graceful stop finishes the in-flight batches before the last commit.

    Faust calls `_consumer_wait_empty` once the fetcher has stopped and before the agents and
    tasks stop. When the app is stopping (SIGTERM), it waits, up to `drain_s`, until no agent
    holds a batch and the writer has made every batch durable (rows + changelog) and acked
    it, then commits: a restart reprocesses nothing. During a rebalance it does not wait
    (stream_wait_empty=False): events still in flight there are simply processed again.
    """

    drain_s: float = 30.0
    quiet_s: float = 0.25  # longer than batch_within: a partial batch has been handed out
    in_flight = 0  # batches an agent is working on (taken, not yet handed to the writer/acked)
    writer: Any = None

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        if not self.should_stop:
            return await super()._consumer_wait_empty(consumer, logger)
        log.warning("graceful stop: finishing the in-flight batches (up to %.0fs)", self.drain_s)
        # asyncio.wait, not wait_for: a timeout must not wait for a commit stuck in a
        # rebalance to unwind, so the stop stays bounded.
        drained = await _within(self._drain(), self.drain_s)
        committed = await _within(consumer.commit(), 10.0)
        if drained and committed:
            log.warning("graceful stop: in-flight batches written and offsets committed")
        else:
            log.warning(
                "graceful stop: in-flight batches not durable and committed within %.0fs; "
                "their events are processed again after a restart",
                self.drain_s,
            )

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


async def _within(coro: Any, timeout: float) -> bool:
    """Run coro for at most timeout seconds; False (and cancelled, not awaited) if late."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        return False
    return task.exception() is None


def build_app(settings: Settings, ctx: WorkerContext) -> faust.App:
    """A Faust app wired to the worker context; nothing runs until a faust.Worker starts it."""
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = DrainingApp(
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
        # A rebalance does not wait for unacked events (they are processed again where the
        # partition goes); a graceful stop does, bounded (DrainingApp).
        stream_wait_empty=False,
    )
    app.drain_s = settings.shutdown_drain_s
    app.quiet_s = max(0.25, 4 * settings.batch_within)
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
            app.in_flight += 1
            try:
                await score_batch(ctx, stream, events)
            except Exception as exc:
                _fatal("scoring", exc)
                raise
            finally:
                app.in_flight -= 1

    @app.agent(outcomes)
    async def learn(stream: Any) -> None:
        # Up to a second per batch: each batch costs an insert and a lookup on the store
        # connection the scoring writer needs too, and outcomes are not latency-critical.
        async for events in stream.noack_take(1000, within=OUTCOME_BATCH_WITHIN_S):
            if not await admit_or_seek(outcome_guard, events):
                continue
            app.in_flight += 1
            try:
                await learn_batch(ctx, events)
            except Exception as exc:
                _fatal("learning", exc)
                raise
            finally:
                app.in_flight -= 1
            # Acked once a learner checkpoint covers them (checkpoint_learners below): an
            # outcome committed but learned only in memory would be lost by a crash.
            ctx.held_outcomes.hold(stream, events)

    ctx.writer = app.writer = BatchWriter(
        ctx, TXN_COLUMNS, max_rows=settings.store_max_pending_rows
    )

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # faust types it sync
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

    @app.timer(interval=DEAD_LETTERS_INTERVAL_S)  # streamlearn.dead_letters, idempotent
    async def write_dead_letters() -> None:
        await store_rows(ctx.dlq.rows, ctx.sink.insert)

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
    try:
        _, rows = await ctx.sink.call(ctx.store.query_rows, REFRESH_SQL)
    except StoreUnavailable as exc:
        # Store outage: keep serving the last rates; the next refresh tries again.
        log.warning("merchant fraud rates not refreshed: %s", exc)
        return
    ctx.merchant_risk.replace(rows)


def _fatal(stage: str, exc: BaseException) -> None:
    """A bug, not bad input: stop the worker; unacked events are processed again on restart."""
    log.critical("%s failed, stopping the worker: %r", stage, exc, exc_info=exc)
    os.kill(os.getpid(), signal.SIGTERM)
    # If the graceful stop hangs, leave anyway: nothing unacked is lost, only redone.
    timer = threading.Timer(30.0, os._exit, args=(70,))
    timer.daemon = True
    timer.start()
