"""Starts one worker: opens the store, loads the current model, then runs the Faust app."""

from __future__ import annotations

import json
import logging
import os
from contextlib import suppress

from confluent_kafka import Producer

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.foundation.dead_letters import DeadLetterWriter
from streamlearn.foundation.errors import StoreBusy
from streamlearn.foundation.kafka import check_reachable, ensure_topics, producer_config
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import running_worker, worker_file
from streamlearn.schemas import Serde
from streamlearn.schemas.serde import default_registry
from streamlearn.streams.app import build_app
from streamlearn.streams.champion import Champion
from streamlearn.streams.context import WorkerContext
from streamlearn.streams.merchant_risk import REFRESH_SQL, MerchantRisk
from streamlearn.streams.model_feed import ModelFeed
from streamlearn.streams.online import OnlineLearning, save_checkpoint_sync, start_checkpoints
from streamlearn.streams.schema_feed import SchemaFeed
from streamlearn.streams.sink import StoreSink

log = logging.getLogger(__name__)


def build_context(settings: Settings, store: Store) -> WorkerContext:
    registry = default_registry(settings)  # with the schema registry, if one is configured
    online = OnlineLearning(
        settings.learners, FEATURE_NAMES, psi_threshold=settings.drift_psi_threshold
    )
    ctx = WorkerContext(
        settings=settings,
        store=store,
        sink=StoreSink(store, fault_down_file=settings.fault_store_down_file),
        producer=None,  # type: ignore[arg-type]  # set below, needs ctx for its callback
        dlq=DeadLetterWriter(settings),
        champion=Champion(
            settings.model_signing_key.get_secret_value().encode()
            if settings.model_signing_key
            else None
        ),
        learner=online.lr,  # type: ignore[arg-type]  # the lr learner: river_score
        merchant_risk=MerchantRisk(),
        txn_serde=Serde("Transaction", registry),
        outcome_serde=Serde("Outcome", registry),
        prediction_serde=Serde("Prediction", registry),
        drift_serde=Serde("DriftEvent", registry),
        online=online,
    )
    errors = ctx.delivery_errors

    def on_delivery(err, _msg) -> None:
        if err is not None:
            errors.append(str(err))

    ctx.producer = Producer(
        producer_config(
            settings,
            **{
                "enable.idempotence": True,
                "linger.ms": 2,
                "batch.num.messages": 10_000,
                "compression.type": "lz4",
                "on_delivery": on_delivery,
                "delivery.report.only.error": True,
            },
        )
    )
    ctx.registry = registry
    return ctx


def run_worker(settings: Settings, *, loglevel: str = "warning") -> None:
    """Run until SIGINT/SIGTERM; a stopped worker has made every acked batch durable."""
    import faust

    if settings.embedded_store and running_worker(settings) is not None:
        raise StoreBusy(
            f"a worker already owns the embedded store in {settings.state_dir} "
            "(stop it, or use a ClickHouse server to run several workers)"
        )
    check_reachable(settings)
    ensure_topics(settings)
    store = Store(settings.store_url)
    store.migrate()
    ctx = build_context(settings, store)
    signing_key = settings.model_signing_key
    restored = start_checkpoints(
        ctx,
        settings.state_dir,
        settings.worker_id,
        signing_key.get_secret_value().encode() if signing_key else None,
    )
    ctx.merchant_risk.replace(store.query_rows(REFRESH_SQL)[1])
    assert ctx.registry is not None  # set above
    schema_feed = SchemaFeed(settings, ctx.registry)
    schema_feed.start()
    model_feed = ModelFeed(settings, ctx.champion, ctx.dlq)
    model_feed.start()
    app = build_app(settings, ctx)
    marker = worker_file(settings)
    if settings.embedded_store:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"pid": os.getpid(), "port": settings.web_port}))
    current = ctx.champion.current
    print(
        f"streamlearn worker {settings.worker_id}: Kafka {settings.kafka_bootstrap}, "
        f"model {current.version if current else 'none'}, "
        f"learners {'restored from checkpoint' if restored else 'new'}, http://127.0.0.1:{settings.web_port}/status/",
        flush=True,
    )
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        with suppress(FileNotFoundError):
            if settings.embedded_store:
                marker.unlink()
        model_feed.stop()
        schema_feed.stop()
        with suppress(OSError, ValueError):
            save_checkpoint_sync(ctx)  # the learners as they stopped, with what they covered
        ctx.producer.flush(30)
        with suppress(Exception):
            ctx.dlq.flush()
        ctx.sink.close()
        store.close()
