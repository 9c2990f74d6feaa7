"""ClickHouse through clickhouse-connect: the one place that opens the store and owns the DDL.

`chdb://PATH` opens the embedded engine (one process at a time), `http(s)://` a server; the
same statements serve both. Analysts' tables are ReplacingMergeTree keyed by the event's
identity, and every batch insert carries a deduplication token, so a retried or replayed
batch never shows twice in the views analysts query.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from streamlearn.foundation.errors import StoreUnavailable

DATABASE = "streamlearn"
DEDUP = "non_replicated_deduplication_window = 10000"

DDL: tuple[str, ...] = (
    f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
    # One row per scored transaction: the event, the exact feature vector used, every score.
    f"""CREATE TABLE IF NOT EXISTS {DATABASE}.transactions (
        transaction_id String,
        event_time DateTime64(3, 'UTC'),
        card_id String,
        merchant_id String,
        amount Float64,
        currency LowCardinality(String),
        country LowCardinality(Nullable(String)),
        merchant_category LowCardinality(Nullable(String)),
        channel LowCardinality(Nullable(String)),
        device_id Nullable(String),
        feature_version LowCardinality(String),
        features Map(LowCardinality(String), Float64),
        score Float64,
        lightgbm_score Nullable(Float64),
        river_score Nullable(Float64),
        scores Map(LowCardinality(String), Float64),
        model_version LowCardinality(String),
        shadow_version LowCardinality(Nullable(String)),
        scored_at DateTime64(3, 'UTC'),
        source_partition UInt16,
        source_offset UInt64,
        INDEX idx_txn transaction_id TYPE bloom_filter GRANULARITY 4,
        INDEX idx_model model_version TYPE set(256) GRANULARITY 4
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(event_time)
    ORDER BY (toDate(event_time), card_id, event_time, transaction_id)
    SETTINGS {DEDUP}""",
    f"""CREATE TABLE IF NOT EXISTS {DATABASE}.predictions (
        transaction_id String,
        event_time DateTime64(3, 'UTC'),
        card_id String,
        score Float64,
        model_version LowCardinality(String),
        lightgbm_score Nullable(Float64),
        river_score Nullable(Float64),
        scores Map(LowCardinality(String), Float64),
        scored_at DateTime64(3, 'UTC'),
        INDEX idx_txn transaction_id TYPE bloom_filter GRANULARITY 4
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(event_time)
    ORDER BY (toDate(event_time), model_version, transaction_id)
    SETTINGS {DEDUP}""",
    # The served predictions follow every insert into transactions: one write per batch.
    f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {DATABASE}.predictions_mv
    TO {DATABASE}.predictions AS
    SELECT transaction_id, event_time, card_id, score, model_version, lightgbm_score,
           river_score, scores, scored_at
    FROM {DATABASE}.transactions""",
    # Every outcome received; exact repeats collapse, a conflicting later outcome is kept too.
    f"""CREATE TABLE IF NOT EXISTS {DATABASE}.outcomes (
        transaction_id String,
        is_fraud Bool,
        event_time DateTime64(3, 'UTC'),
        received_at DateTime64(3, 'UTC'),
        source_partition UInt16,
        source_offset UInt64
    ) ENGINE = ReplacingMergeTree
    ORDER BY (transaction_id, event_time, is_fraud)
    SETTINGS {DEDUP}""",
    # The label of a transaction: its latest outcome (a reversal overrides a chargeback).
    f"""CREATE VIEW IF NOT EXISTS {DATABASE}.labels AS
    SELECT transaction_id,
           argMax(f, t) AS is_fraud,
           max(t) AS labeled_at,
           min(t) AS first_labeled_at,
           count() AS outcomes,
           uniqExact(f) > 1 AS conflicting
    FROM (SELECT transaction_id, is_fraud AS f, event_time AS t FROM {DATABASE}.outcomes FINAL)
    GROUP BY transaction_id""",
    f"""CREATE TABLE IF NOT EXISTS {DATABASE}.models (
        version String,
        name LowCardinality(String),
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        status LowCardinality(String),
        train_start DateTime64(3, 'UTC'),
        train_end DateTime64(3, 'UTC'),
        rows_train UInt64,
        rows_valid UInt64,
        feature_names Array(String),
        feature_version LowCardinality(String),
        metrics Map(LowCardinality(String), Float64),
        sha256 String,
        reason String,
        train_cpu_s Float64,
        train_wall_s Float64
    ) ENGINE = ReplacingMergeTree(updated_at)
    ORDER BY version""",
    # Added columns (existing stores migrate): why the run ran, and the gate's decision with
    # both models' metrics on the same holdout rows.
    f"""ALTER TABLE {DATABASE}.models
        ADD COLUMN IF NOT EXISTS trigger String DEFAULT '',
        ADD COLUMN IF NOT EXISTS decision String DEFAULT '',
        ADD COLUMN IF NOT EXISTS compared_with String DEFAULT '',
        ADD COLUMN IF NOT EXISTS compared_rows UInt64 DEFAULT 0,
        ADD COLUMN IF NOT EXISTS gate_metrics Map(LowCardinality(String), Float64),
        ADD COLUMN IF NOT EXISTS champion_metrics Map(LowCardinality(String), Float64)""",
    # The gate's rules, and the live (shadow) comparison: its decision, on how many matured
    # shadow-scored transactions, and both models' metrics on exactly those transactions.
    f"""ALTER TABLE {DATABASE}.models
        ADD COLUMN IF NOT EXISTS gate String DEFAULT '',
        ADD COLUMN IF NOT EXISTS live_decision String DEFAULT '',
        ADD COLUMN IF NOT EXISTS live_rows UInt64 DEFAULT 0,
        ADD COLUMN IF NOT EXISTS live_metrics Map(LowCardinality(String), Float64),
        ADD COLUMN IF NOT EXISTS live_champion_metrics Map(LowCardinality(String), Float64)""",
    # Every registered release as published (Avro single-object bytes, base64): a rollback
    # republishes it after compaction dropped it from the models topic.
    f"""CREATE TABLE IF NOT EXISTS {DATABASE}.model_artifacts (
        version String,
        name LowCardinality(String),
        created_at DateTime64(3, 'UTC'),
        release String
    ) ENGINE = ReplacingMergeTree
    ORDER BY version""",
    # Inference cost: CPU seconds spent scoring, per model version, worker and minute.
    f"""CREATE TABLE IF NOT EXISTS {DATABASE}.model_usage (
        time DateTime64(3, 'UTC'),
        worker String,
        version LowCardinality(String),
        predictions UInt64,
        cpu_s Float64
    ) ENGINE = MergeTree
    ORDER BY (version, time)""",
    f"""CREATE TABLE IF NOT EXISTS {DATABASE}.drift_events (
        time DateTime64(3, 'UTC'),
        kind LowCardinality(String),
        subject String,
        statistic Float64,
        threshold Float64,
        model_version LowCardinality(String),
        details String
    ) ENGINE = ReplacingMergeTree
    ORDER BY (time, kind, subject)""",
    f"""CREATE TABLE IF NOT EXISTS {DATABASE}.dead_letters (
        time DateTime64(3, 'UTC'),
        source_topic LowCardinality(String),
        source_partition UInt16,
        source_offset UInt64,
        stage LowCardinality(String),
        error String,
        key String,
        value_size UInt32
    ) ENGINE = ReplacingMergeTree
    ORDER BY (source_topic, source_partition, source_offset)""",
    # Outcomes stored but not learned from, and why: 'expired' (known more than
    # label_horizon_days after the transaction) or 'unknown' (no transaction was scored for
    # it within early_outcome_wait_s). Keyed by the outcome message: replays collapse.
    f"""CREATE TABLE IF NOT EXISTS {DATABASE}.unlearned_outcomes (
        transaction_id String,
        is_fraud Bool,
        outcome_time DateTime64(3, 'UTC'),
        transaction_time Nullable(DateTime64(3, 'UTC')),
        reason LowCardinality(String),
        source_partition Int32,
        source_offset Int64
    ) ENGINE = ReplacingMergeTree
    ORDER BY (transaction_id, reason, source_partition, source_offset)
    SETTINGS {DEDUP}""",
    # Online metrics per scorer, from labels as they arrive: one snapshot per worker a minute.
    f"""CREATE TABLE IF NOT EXISTS {DATABASE}.online_metrics (
        time DateTime64(3, 'UTC'),
        worker String,
        scorer LowCardinality(String),
        labels UInt64,
        positives UInt64,
        auc_rolling Float64,
        auc Float64,
        logloss Float64
    ) ENGINE = MergeTree
    ORDER BY (scorer, time)""",
    # Added columns (existing stores migrate): average precision over the rolling window and
    # since the start, and precision among each event day's top `alerts_per_day` scores,
    # pooled over every day and over the last 7 days.
    f"""ALTER TABLE {DATABASE}.online_metrics
        ADD COLUMN IF NOT EXISTS ap_rolling Float64 DEFAULT nan,
        ADD COLUMN IF NOT EXISTS ap Float64 DEFAULT nan,
        ADD COLUMN IF NOT EXISTS p_at_k_day Float64 DEFAULT nan,
        ADD COLUMN IF NOT EXISTS p_at_k_day_rolling Float64 DEFAULT nan,
        ADD COLUMN IF NOT EXISTS alerts_per_day UInt32 DEFAULT 0""",
)


def redact_url(url: str) -> str:
    """The store URL with any password masked, for logs and status (never raises)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" not in netloc:
        return url
    userinfo, host = netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    masked = f"{user}:***@{host}" if ":" in userinfo else netloc
    return urlunsplit(parts._replace(netloc=masked))


def batch_token(kind: str, partition: int, first: int, last: int, content: Iterable[str]) -> str:
    """A deduplication token: partition + offset range + a hash of what the batch holds."""
    h = hashlib.blake2b(digest_size=12)
    for item in content:
        h.update(item.encode())
        h.update(b"\0")
    return f"{kind}:{partition}:{first}-{last}:{h.hexdigest()}"


class Store:
    """A thread-safe handle on the ClickHouse client (chdb or server)."""

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        import clickhouse_connect

        self.url = url
        self.embedded = url.startswith("chdb://")
        self._lock = threading.Lock()
        try:
            if self.embedded:
                path = url[len("chdb://") :]
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self.client = clickhouse_connect.get_client(dsn=url)
            else:
                self.client = clickhouse_connect.get_client(
                    dsn=url, connect_timeout=5, send_receive_timeout=60
                )
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot open ClickHouse at {redact_url(url)}: {_one_line(exc)} "
                "(check STREAMLEARN_CLICKHOUSE_URL)"
            ) from exc
        self.readonly = readonly

    def _query_settings(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        """A read-only handle's queries run with readonly=1: ClickHouse refuses any write."""
        return {**settings, "readonly": 1} if self.readonly else settings or None

    def migrate(self) -> None:
        """Create the database, tables and views if missing (idempotent)."""
        for statement in DDL:
            self.command(statement)

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> Any:
        with self._lock:
            try:
                return self.client.command(sql, settings=settings)
            except Exception as exc:
                raise StoreUnavailable(f"ClickHouse command failed: {_one_line(exc)}") from exc

    def query_df(self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any):
        with self._lock:
            try:
                return self.client.query_df(
                    sql, parameters=parameters, settings=self._query_settings(settings)
                )
            except Exception as exc:
                raise StoreUnavailable(f"ClickHouse query failed: {_one_line(exc)}") from exc

    def query_rows(
        self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any
    ) -> tuple[list[str], list[tuple]]:
        with self._lock:
            try:
                res = self.client.query(
                    sql, parameters=parameters, settings=self._query_settings(settings)
                )
            except Exception as exc:
                raise StoreUnavailable(f"ClickHouse query failed: {_one_line(exc)}") from exc
        return list(res.column_names), [tuple(r) for r in res.result_rows]

    def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any):
        with self._lock:
            try:
                return self.client.query_arrow(
                    sql, parameters=parameters, settings=self._query_settings(settings)
                )
            except Exception as exc:
                raise StoreUnavailable(f"ClickHouse query failed: {_one_line(exc)}") from exc

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        token: str | None = None,
    ) -> None:
        """Insert one batch; with a token, a retry of the same batch is skipped by ClickHouse."""
        if not rows:
            return
        settings = {"insert_deduplication_token": token} if token else None
        with self._lock:
            try:
                self.client.insert(
                    f"{DATABASE}.{table}", rows, column_names=list(columns), settings=settings
                )
            except Exception as exc:
                raise StoreUnavailable(f"insert into {table} failed: {_one_line(exc)}") from exc

    def close(self) -> None:
        # Closing a broken client has nothing left to report.
        with self._lock, contextlib.suppress(Exception):
            self.client.close()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
