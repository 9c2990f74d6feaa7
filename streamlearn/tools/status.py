"""`streamlearn status`: the running worker's /status, Kafka (reachable? the workers' consumer
lag per partition) and what the store holds, as one JSON-safe dict and as rich tables."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from rich.console import Console, RenderableType
from rich.table import Table

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.kafka import confluent_config
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
# The worker's consumer group (the Faust app id) reads these topics.
GROUP_TOPICS = ("transactions", "outcomes")
KAFKA_TIMEOUT_S = 5.0

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
# Worker figures shown in tables of their own, not in the list of figures.
OWN_TABLES = ("worker", "online_metrics")


def worker_status(port: int, timeout: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/", timeout=timeout) as resp:
        return json.loads(resp.read())


def collect_status(settings: Settings) -> dict[str, Any]:
    """Everything `status` shows; JSON-safe. worker is None when no worker answered."""
    info = running_worker(settings)
    port = info["port"] if info else settings.web_port
    try:
        worker: dict[str, Any] | None = worker_status(port)
    except OSError:
        worker = None
    return {
        "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "worker_url": f"http://127.0.0.1:{port}/status/",
        "worker": worker,
        "kafka": kafka_status(settings),
        "store": store_status(settings),
    }


def store_status(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"url": redact_url(settings.store_url), "counts": {}, "error": None}
    try:
        store = open_store(settings, readonly=True)
    except StreamlearnError as exc:
        out["error"] = str(exc)
        return out
    try:
        cols, rows = store.query_rows(COUNTS_SQL)
    except StreamlearnError as exc:
        out["error"] = str(exc)
        return out
    finally:
        store.close()  # --watch opens it again for each look
    counts = dict(zip(cols, rows[0], strict=True)) if rows else {}
    latest = counts.get("latest_event")
    if isinstance(latest, dt.datetime):  # naive UTC, as the store returns it
        counts["latest_event"] = latest.isoformat(timespec="milliseconds") + "Z"
    out["counts"] = counts
    return out


def kafka_status(settings: Settings, timeout: float = KAFKA_TIMEOUT_S) -> dict[str, Any]:
    """Whether Kafka answers, and the worker group's lag on each partition it reads."""
    group = f"{settings.topic_prefix}streamlearn"
    out: dict[str, Any] = {
        "bootstrap": settings.kafka_bootstrap,
        "reachable": False,
        "error": None,
        "consumer_group": group,
        "lag_total": None,
        "lag": [],
    }
    # A quiet client: librdkafka would print a line per failed connection attempt.
    client = AdminClient(confluent_config(settings, log_level=0))
    try:
        metadata = client.list_topics(timeout=timeout)
    except KafkaException as exc:
        out["error"] = f"did not answer within {timeout:.0f}s ({exc.args[0]})"
        return out
    out["reachable"] = True
    partitions = [
        TopicPartition(topic, p)
        for topic in (settings.topic(name) for name in GROUP_TOPICS)
        if topic in metadata.topics
        for p in sorted(metadata.topics[topic].partitions)
    ]
    try:
        out["lag"] = consumer_lag(client, group, partitions, timeout)
    except KafkaException as exc:
        out["error"] = f"consumer lag unknown: {exc.args[0]}"
        return out
    out["lag_total"] = sum(row["lag"] for row in out["lag"])
    return out


def consumer_lag(
    client: AdminClient, group: str, partitions: list[TopicPartition], timeout: float
) -> list[dict[str, Any]]:
    """Per partition: the group's committed offset, the log's start and end, and the lag."""
    if not partitions:
        return []
    request = [ConsumerGroupTopicPartitions(group, partitions)]
    answer = client.list_consumer_group_offsets(request, request_timeout=timeout)[group]
    committed = {
        (tp.topic, tp.partition): tp.offset
        for tp in answer.result(timeout).topic_partitions
        if tp.error is None and tp.offset >= 0
    }
    starts = _offsets(client, partitions, OffsetSpec.earliest(), timeout)
    ends = _offsets(client, partitions, OffsetSpec.latest(), timeout)
    rows = []
    for tp in partitions:
        key = (tp.topic, tp.partition)
        rows.append(
            {
                "topic": tp.topic,
                "partition": tp.partition,
                "committed": committed.get(key),
                "end": ends[key],
                "lag": partition_lag(ends[key], committed.get(key), starts[key]),
            }
        )
    return rows


def partition_lag(end: int, committed: int | None, start: int) -> int:
    """Messages the group has still to read: from its committed offset (from the log's start
    when it never committed, where a new group begins) to the end of the log."""
    return max(0, end - (start if committed is None else committed))


def _offsets(
    client: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec, timeout: float
) -> dict[tuple[str, int], int]:
    futures = client.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout)
    return {(tp.topic, tp.partition): fut.result(timeout).offset for tp, fut in futures.items()}


def render_status(console: Console, status: dict[str, Any]) -> None:
    for part in status_renderables(status):
        console.print(part)


def status_renderables(status: dict[str, Any]) -> list[RenderableType]:
    """The status as rich tables (the same for one look and for --watch)."""
    kafka, store = status.get("kafka") or {}, status.get("store") or {}
    reach = "reachable" if kafka.get("reachable") else f"unreachable: {kafka.get('error')}"
    parts: list[RenderableType] = [
        f"Kafka {kafka.get('bootstrap')} ({reach})  ·  ClickHouse {store.get('url')}  ·  "
        f"{status.get('checked_at', '')}"
    ]
    worker = status.get("worker")
    if worker is None:
        parts.append(
            f"worker: none answered at {status.get('worker_url')} "
            "(start one with `streamlearn worker`)"
        )
    else:
        parts += _worker_tables(worker)
    if kafka.get("lag"):
        parts.append(_lag_table(kafka))
    parts.append(_store_table(store))
    return parts


def _worker_tables(worker: dict[str, Any]) -> list[RenderableType]:
    figures = Table(title=f"worker {worker.get('worker')}")
    figures.add_column("figure")
    figures.add_column("value", overflow="fold")
    for key, value in worker.items():
        if key not in OWN_TABLES:
            figures.add_row(key, _fmt(value))
    parts: list[RenderableType] = [figures]
    metrics = worker.get("online_metrics") or {}
    if metrics:
        m = Table(title="online metrics (at label time, from the scores served)")
        m.add_column("scorer")
        for col in METRIC_COLUMNS:
            m.add_column(col)
        for name, vals in metrics.items():
            m.add_row(name, *(_fmt(vals.get(c)) for c in METRIC_COLUMNS))
        k = next(iter(metrics.values())).get("alerts_per_day")
        parts += [
            m,
            f"p@k/day: fraud share among each event day's top {_fmt(k)} scores, pooled "
            "over all days and the last 7; *_rolling: the last 5,000 labels",
        ]
    return parts


def _lag_table(kafka: dict[str, Any]) -> Table:
    t = Table(title=f"consumer lag of group {kafka['consumer_group']}: {kafka['lag_total']:,}")
    for col in ("topic", "partition", "committed", "end", "lag"):
        t.add_column(col, justify="left" if col == "topic" else "right")
    for row in kafka["lag"]:
        t.add_row(*(_fmt(row[c]) for c in ("topic", "partition", "committed", "end", "lag")))
    return t


def _store_table(store: dict[str, Any]) -> Table | str:
    if store.get("error"):
        return f"store: {store['error']}"
    c = Table(title="store")
    c.add_column("table")
    c.add_column("rows")
    for key, value in (store.get("counts") or {}).items():
        c.add_row(key, _fmt(value))
    return c


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return "; ".join(_fmt(v) for v in value) or "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
