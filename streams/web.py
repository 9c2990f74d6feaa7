"""The worker's HTTP views: /status (a snapshot refreshed each second, never computed per
request; local-only), /health, /ready and /metrics for probes and Prometheus, and store access
for CLI commands while it owns chdb."""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any

import faust
from faust.web import Request, Response, View

from streamlearn.streams import stalls
from streamlearn.streams.health import gather_facts, liveness, readiness
from streamlearn.streams.report_view import register_report_view
from streamlearn.streams.store_access import local_refusal, peer_of, register_store_views

if TYPE_CHECKING:
    from streamlearn.streams.app import Running
    from streamlearn.streams.metrics import WorkerMetrics
    from streamlearn.streams.parts import WorkerParts


def _clean(value: Any) -> Any:
    """JSON-safe: NaN becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def status_snapshot(parts: WorkerParts, running: Running) -> dict[str, Any]:
    """What `streamlearn status` and the demo show about a running worker."""
    return _clean(
        {
            **_scoring_status(parts, running),
            **_learning_status(parts),
            **parts.sink.status(),
            "store_pending_rows": running.writer.pending_rows,
            "scoring_blocked": running.writer.blocked,
            "slices_dropped_revoked": running.writer.dropped_revoked,
            **parts.learning.published.status,
            "checkpoint": _checkpoint_status(parts),
            "stalls": stalls.snapshot(),  # None unless STREAMLEARN_STALL_LOG_MS is set
        }
    )


def _scoring_status(parts: WorkerParts, running: Running) -> dict[str, Any]:
    champion, shadow = parts.champion.slots()
    s = parts.stats
    return {
        "worker": parts.settings.worker_id,
        "uptime_s": time.time() - s.started_at,
        "model_version": champion.version if champion else "none",
        "shadow_version": shadow.version if shadow else None,
        "model_swaps": parts.champion.swaps,
        "models_refused": [list(r) for r in parts.champion.rejected[-5:]],
        "transactions": running.writer.transactions,
        "predictions": s.predictions,
        "events_per_s": s.rate(),
        "latency": s.latency(),
        "batch_ms_p50": sorted(s.process_ms)[len(s.process_ms) // 2] if s.process_ms else None,
        "fetched_batches": getattr(running.app.consumer, "batches_delivered", 0),
        "dead_letters": dict(parts.dlq.counts),
        "dead_letters_truncated": parts.dlq.truncated,
        "dead_letters_undeliverable": parts.dlq.undeliverable,
        "replayed_transactions": s.replayed_transactions,
        "state_entries": len(running.scorer.table.data),
        "foreign_state_dropped": s.foreign_state_dropped,
        "inference": {
            v: {"cpu_s": cpu, "predictions": s.inference_count.get(v, 0)}
            for v, cpu in s.inference_cpu_s.items()
        },
    }


def _learning_status(parts: WorkerParts) -> dict[str, Any]:
    join, learning = parts.label_join, parts.learning
    counters = learning.learners.counters  # plain ints: read across threads as they are
    return {
        "outcomes": parts.stats.outcomes,
        "learned": counters["learned"],
        "duplicate_outcomes": counters["duplicate"],
        "conflicting_outcomes": counters["conflicting"],
        **join.counters,
        "parked_outcomes": len(join.early),
        "parked_handed_over": parts.outcomes.handed_over,
        "outcomes_awaiting_checkpoint": len(parts.held),
        "learning_backlog": learning.backlog,
        "observations_skipped": learning.published.observations_skipped,
        "pending_transactions": len(join.pending),
        "pending_evicted": join.pending.evicted,
        "merchants_with_labels": len(parts.merchant_risk),
    }


def _checkpoint_status(parts: WorkerParts) -> dict[str, Any]:
    published = parts.learning.published
    return {
        "restored": parts.restored,
        "covered_offsets": {str(p): o for p, o in parts.outcomes.covered.items()},
        "saved_offsets": {str(p): o for p, o in published.saved_covered.items()},
        "skipped_outcomes": parts.outcomes.skipped,
        "written": published.checkpoints,
        "last_write_s": published.checkpoint_s,
        "restored_counters": parts.restored_counters,
        # Live ints (the published status is up to two seconds old).
        "learned_by_learner": {
            m.name: getattr(m, "learned", getattr(m, "seen", None))
            for m in list(parts.learning.learners.learners)
        },
    }


class StatusCache:
    """The /status body, rebuilt once a second by a timer: a poll costs a memory copy."""

    def __init__(self, parts: WorkerParts, running: Running) -> None:
        self.parts, self.running = parts, running
        self.body = b"{}"

    def refresh(self) -> None:
        self.body = json.dumps(status_snapshot(self.parts, self.running)).encode()


def register_views(
    app: faust.App,
    parts: WorkerParts,
    running: Running,
    status: StatusCache,
    metrics: WorkerMetrics | None = None,
) -> None:
    port = parts.settings.web_port

    @app.page("/status/")
    class Status(View):
        async def get(self, request: Request) -> Response:
            # Local-only like /store/* (no token: nothing secret): Prometheus and probes read
            # /metrics, /health and /ready, which is what a non-loopback bind is for.
            refused = local_refusal(request.headers, port, peer_of(request))
            if refused is not None:
                return self.text(refused[1], status=refused[0])
            if status.body == b"{}":
                status.refresh()
            return self.bytes(status.body, content_type="application/json")

    register_ops_views(app, parts, running, metrics)
    register_store_views(app, parts.settings, parts.sink)
    register_report_view(app, parts)


def register_ops_views(
    app: faust.App, parts: WorkerParts, running: Running, metrics: WorkerMetrics | None
) -> None:
    """/health and /ready (200 or 503 with a JSON body saying why), and /metrics if enabled:
    what probes and Prometheus read, on whatever address STREAMLEARN_WEB_BIND names."""
    settings = parts.settings

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            body = liveness(bool(running.app.should_stop), parts.stats.started_at)
            return self.json(body)

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready, body = readiness(gather_facts(parts, running), settings.ready_max_lag)
            return self.json(body, status=200 if ready else 503)

    if metrics is None:
        return
    render, content_type = metrics.render, metrics.content_type

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(render(), headers={"Content-Type": content_type})
