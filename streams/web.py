"""The worker's HTTP views: /status, and store access for CLI commands (streams/store_access)."""

from __future__ import annotations

import math
import time
from typing import Any

import faust
from faust.web import Request, Response, View

from streamlearn.streams.context import WorkerContext
from streamlearn.streams.store_access import register_store_views


def _clean(value: Any) -> Any:
    """JSON-safe: NaN becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def status_snapshot(ctx: WorkerContext) -> dict[str, Any]:
    """What `streamlearn status` and the demo show about a running worker."""
    champion, shadow = ctx.champion.slots()
    s = ctx.stats
    return _clean(
        {
            "worker": ctx.settings.worker_id,
            "uptime_s": time.time() - s.started_at,
            "model_version": champion.version if champion else "none",
            "shadow_version": shadow.version if shadow else None,
            "model_swaps": ctx.champion.swaps,
            "models_refused": [list(r) for r in ctx.champion.rejected[-5:]],
            "transactions": s.transactions,
            "predictions": s.predictions,
            "events_per_s": s.rate(),
            "latency": s.latency(),
            "batch_ms_p50": sorted(s.process_ms)[len(s.process_ms) // 2] if s.process_ms else None,
            "dead_letters": dict(ctx.dlq.counts),
            "outcomes": s.outcomes,
            "learned": s.learned,
            "early_outcomes": s.early_outcomes,
            "duplicate_outcomes": s.duplicate_outcomes,
            "conflicting_outcomes": s.conflicting_outcomes,
            "expired_outcomes": s.expired_outcomes,
            "unknown_outcomes": s.unknown_outcomes,
            "parked_outcomes": len(ctx.early),
            "outcomes_awaiting_checkpoint": len(ctx.held_outcomes),
            "replayed_transactions": s.replayed_transactions,
            "offset_holes_reread": sum(g.holes for g in ctx.offset_guards),
            "pending_transactions": len(ctx.pending),
            "pending_evicted": ctx.pending.evicted,
            "merchants_with_labels": len(ctx.merchant_risk),
            **ctx.sink.status(),
            "store_pending_rows": ctx.writer.pending_rows if ctx.writer else 0,
            "scoring_blocked": ctx.writer.blocked if ctx.writer else 0,
            "online_metrics": ctx.scorecard.snapshot(max_age_s=1.0),
            **(ctx.online.status() if ctx.online is not None else {}),
            "inference": {
                v: {"cpu_s": cpu, "predictions": s.inference_count.get(v, 0)}
                for v, cpu in s.inference_cpu_s.items()
            },
        }
    )


def register_views(app: faust.App, ctx: WorkerContext) -> None:
    @app.page("/status/")
    class Status(View):
        async def get(self, request: Request) -> Response:
            return self.json(status_snapshot(ctx))

    register_store_views(app, ctx)
