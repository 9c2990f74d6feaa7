"""Starts one worker: opens the store, loads the current model, then runs the Faust app."""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from streamlearn.foundation import logs
from streamlearn.foundation.errors import StoreBusy
from streamlearn.foundation.kafka import check_reachable, ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import running_worker, worker_file
from streamlearn.streams import stalls
from streamlearn.streams.app import build_app
from streamlearn.streams.merchant_risk import REFRESH_SQL
from streamlearn.streams.model_feed import ModelFeed
from streamlearn.streams.parts import WorkerParts, build_parts
from streamlearn.streams.schema_feed import SchemaFeed
from streamlearn.streams.sink import StoreSink

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings, *, loglevel: str = "warning", open_store: Callable[..., Any] = Store
) -> None:
    """Run until SIGINT/SIGTERM; a stopped worker has made every acked batch durable.

    open_store opens each store session (tests pass a double that injects store outages).
    """
    if settings.embedded_store and running_worker(settings) is not None:
        raise StoreBusy(
            f"a worker already owns the embedded store in {settings.state_dir} "
            "(stop it, or use a ClickHouse server to run several workers)"
        )
    check_reachable(settings)
    ensure_topics(settings)
    sink = StoreSink(settings.store_url, open_store=open_store)
    sink.store.migrate()
    parts = build_parts(settings, sink)
    parts.merchant_risk.replace(sink.reads.store.query_rows(REFRESH_SQL)[1])
    schema_feed = SchemaFeed(settings, parts.serdes.registry)
    schema_feed.start()
    model_feed = ModelFeed(settings, parts.champion, parts.dlq, sink.reads.store)
    model_feed.start()
    running = build_app(settings, parts)
    marker = worker_file(settings)
    if settings.embedded_store:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"pid": os.getpid(), "port": settings.web_port}))
    announce(settings, parts, loglevel)
    tune_runtime()
    stalls.install(settings.stall_log_ms)
    worker = faust_worker(running.app, settings, loglevel)
    try:
        worker.execute_from_commandline()
    finally:
        stalls.stop(settings.stall_log_path)
        with suppress(FileNotFoundError):
            if settings.embedded_store:
                marker.unlink()
        model_feed.stop()
        schema_feed.stop()
        parts.close()


def announce(settings: Settings, parts: WorkerParts, loglevel: str) -> None:
    """One line saying what started; with JSON logs a log record like every other line."""
    current = parts.champion.current
    banner = (
        f"streamlearn worker {settings.worker_id}: Kafka {settings.kafka_bootstrap}, "
        f"model {current.version if current else 'none'}, "
        f"learners {'restored from checkpoint' if parts.restored else 'new'}, "
        f"http://{settings.web_bind}:{settings.web_port}/status/"
    )
    if settings.log_format == "json":
        logs.configure("json", loglevel)
        log.warning(banner)
    else:
        print(banner, flush=True)


def faust_worker(app: Any, settings: Settings, loglevel: str) -> Any:
    """Faust's worker for the app; with JSON logs Faust's own lines are JSON too."""
    import faust

    json_logs = settings.log_format == "json"
    worker = faust.Worker(
        app,
        loglevel=loglevel,
        quiet=True,
        redirect_stdouts=False,
        logging_config=logs.logging_config("json", loglevel) if json_logs else None,
    )
    if json_logs or not sys.stdout.isatty():
        # Faust's start-up spinner writes cursor escapes even when no terminal shows them.
        worker.spinner = None
    return worker


def tune_runtime() -> None:
    """The scoring loop shares the interpreter with the learning and store threads.

    A thread that wants the GIL waits up to the switch interval: 1 ms instead of 5 bounds
    what learning can add to a batch's latency. Objects alive after start-up (models,
    schemas, the app) are frozen out of the collector, and young collections run less often:
    a full collection walks every tracked object while holding the loop.
    """
    sys.setswitchinterval(0.001)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
