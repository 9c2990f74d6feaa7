"""`streamlearn status`: the running worker's figures and what the store holds."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from rich.console import Console
from rich.table import Table

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import redact_url
from streamlearn.foundation.store.access import open_store, running_worker

COUNTS_SQL = """
SELECT
  (SELECT count() FROM streamlearn.transactions FINAL) AS transactions,
  (SELECT count() FROM streamlearn.outcomes FINAL) AS outcomes,
  (SELECT countIf(is_fraud) FROM streamlearn.labels) AS frauds,
  (SELECT count() FROM streamlearn.models FINAL) AS models,
  (SELECT count() FROM streamlearn.drift_events) AS drift_events,
  (SELECT max(event_time) FROM streamlearn.transactions) AS latest_event
"""


# Online metric columns shown per scorer (the same names as streamlearn.online_metrics).
METRIC_COLUMNS = (
    "labels",
    "positives",
    "auc_rolling",
    "auc",
    "ap_rolling",
    "ap",
    "p_at_k_day",
    "p_at_k_day_rolling",
    "logloss",
)


def worker_status(port: int, timeout: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/", timeout=timeout) as resp:
        return json.loads(resp.read())


def collect_status(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kafka": settings.kafka_bootstrap,
        "store": redact_url(settings.store_url),
    }
    info = running_worker(settings)
    port = info["port"] if info else settings.web_port
    try:
        out["worker"] = worker_status(port)
    except OSError:
        out["worker"] = None
    try:
        store = open_store(settings, readonly=True)
        cols, rows = store.query_rows(COUNTS_SQL)
        out["store_counts"] = dict(zip(cols, rows[0], strict=True)) if rows else {}
    except StreamlearnError as exc:
        out["store_counts"] = {"error": str(exc)}
    return out


def render_status(console: Console, status: dict[str, Any]) -> None:
    console.print(f"Kafka {status['kafka']}  ·  ClickHouse {status['store']}")
    worker = status.get("worker")
    if worker is None:
        console.print("worker: not running (start one with `streamlearn worker`)")
    else:
        t = Table(title=f"worker {worker['worker']}")
        t.add_column("figure")
        t.add_column("value")
        for key in (
            "model_version",
            "shadow_version",
            "transactions",
            "events_per_s",
            "latency",
            "dead_letters",
            "outcomes",
            "learned",
            "early_outcomes",
            "duplicate_outcomes",
            "conflicting_outcomes",
            "store_unavailable_since",
            "store_retries",
            "store_pending_rows",
            "scoring_blocked",
        ):
            t.add_row(key, _fmt(worker.get(key)))
        console.print(t)
        metrics = worker.get("online_metrics") or {}
        if metrics:
            m = Table(title="online metrics (at label time, from the scores served)")
            m.add_column("scorer")
            for col in METRIC_COLUMNS:
                m.add_column(col)
            for name, vals in metrics.items():
                m.add_row(name, *(_fmt(vals.get(c)) for c in METRIC_COLUMNS))
            console.print(m)
            k = next(iter(metrics.values())).get("alerts_per_day")
            console.print(
                f"p@k/day: fraud share among each event day's top {_fmt(k)} scores, pooled "
                "over all days and the last 7; *_rolling: the last 5,000 labels"
            )
    counts = status.get("store_counts") or {}
    c = Table(title="store")
    c.add_column("table")
    c.add_column("rows")
    for key, value in counts.items():
        c.add_row(key, _fmt(value))
    console.print(c)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) or "-"
    return str(value)
