"""The store's tables and views: the DDL every store (chdb or server) is migrated with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

DATABASE = "streamlearn"
DEDUP = "non_replicated_deduplication_window = 10000"
UTC_MS = pa.timestamp("ms", tz="UTC")
SCORES = pa.map_(pa.string(), pa.float64())


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its ClickHouse type in the DDL and the Arrow type rows are inserted as."""

    name: str
    type: str
    arrow: pa.DataType


# The scoring path's table: its DDL and its Arrow inserts come from this one list.
TRANSACTION_COLUMNS: tuple[Column, ...] = (
    Column("transaction_id", "String", pa.string()),
    Column("event_time", "DateTime64(3, 'UTC')", UTC_MS),
    Column("card_id", "String", pa.string()),
    Column("merchant_id", "String", pa.string()),
    Column("amount", "Float64", pa.float64()),
    Column("currency", "LowCardinality(String)", pa.string()),
    Column("country", "LowCardinality(Nullable(String))", pa.string()),
    Column("merchant_category", "LowCardinality(Nullable(String))", pa.string()),
    Column("channel", "LowCardinality(Nullable(String))", pa.string()),
    Column("device_id", "Nullable(String)", pa.string()),
    Column("feature_version", "LowCardinality(String)", pa.string()),
    Column("features", "Map(LowCardinality(String), Float64)", SCORES),
    Column("score", "Float64", pa.float64()),
    Column("lightgbm_score", "Nullable(Float64)", pa.float64()),
    Column("river_score", "Nullable(Float64)", pa.float64()),
    Column("scores", "Map(LowCardinality(String), Float64)", SCORES),
    Column("model_version", "LowCardinality(String)", pa.string()),
    Column("shadow_version", "LowCardinality(Nullable(String))", pa.string()),
    Column("scored_at", "DateTime64(3, 'UTC')", UTC_MS),
    Column("source_partition", "UInt16", pa.uint16()),
    Column("source_offset", "UInt64", pa.uint64()),
)

TRANSACTION_COLUMN_NAMES = tuple(c.name for c in TRANSACTION_COLUMNS)
PREDICTION_COLUMN_NAMES = (
    "transaction_id",
    "event_time",
    "card_id",
    "score",
    "model_version",
    "lightgbm_score",
    "river_score",
    "scores",
    "scored_at",
)
PREDICTION_COLUMNS = tuple(c for c in TRANSACTION_COLUMNS if c.name in PREDICTION_COLUMN_NAMES)


@dataclass(frozen=True, slots=True)
class KeyedTable:
    """A ReplacingMergeTree whose key is a transaction's identity: one row per transaction
    under FINAL, however often it was scored (a replay, a rescoring under another champion,
    an upstream resend with a corrected event time in the same month). Monthly partitions keep
    time ranges cheap for retraining; a correction that moves a transaction to another month
    is the one case left with two rows (README, Known limits). A store made with an older key
    is rebuilt under this one by `Store.migrate` (copied, then swapped in)."""

    name: str
    columns: tuple[Column, ...]
    indexes: tuple[str, ...]
    order_by: str = "transaction_id"

    def ddl(self, name: str | None = None) -> str:
        return create_table(
            name or self.name,
            self.columns,
            indexes=self.indexes,
            engine="ReplacingMergeTree",
            tail=f"PARTITION BY toYYYYMM(event_time)\n    ORDER BY {self.order_by}\n"
            f"    SETTINGS {DEDUP}",
        )


KEYED = {
    "transactions": KeyedTable(
        "transactions",
        TRANSACTION_COLUMNS,
        (
            "INDEX idx_card card_id TYPE bloom_filter GRANULARITY 4",
            "INDEX idx_model model_version TYPE set(256) GRANULARITY 4",
        ),
    ),
    "predictions": KeyedTable(
        "predictions",
        PREDICTION_COLUMNS,
        (),
    ),
}


def create_table(
    name: str, columns: Sequence[Column], *, indexes: Sequence[str], engine: str, tail: str
) -> str:
    """CREATE TABLE IF NOT EXISTS for a column list."""
    body = ",\n        ".join([*(f"{c.name} {c.type}" for c in columns), *indexes])
    return (
        f"CREATE TABLE IF NOT EXISTS {DATABASE}.{name} (\n        {body}\n    ) "
        f"ENGINE = {engine}\n    {tail}"
    )


def arrow_table(columns: Sequence[Column], data: Mapping[str, Any]) -> pa.Table:
    """Rows for `columns` as an Arrow table (data: column name -> sequence or Arrow array)."""
    arrays = [
        v if isinstance(v, pa.Array) else pa.array(v, type=c.arrow)
        for c in columns
        for v in (data[c.name],)
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema([(c.name, c.arrow) for c in columns]))


DDL: tuple[str, ...] = (
    f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
    # One row per scored transaction: the event, the exact feature vector used, every score.
    KEYED["transactions"].ddl(),
    # The served predictions, written by the worker beside each transactions insert.
    KEYED["predictions"].ddl(),
    # Stores made before: the predictions now come from the worker's own insert (a view fed
    # by transactions never ran again for a retry that ClickHouse deduplicated at the source).
    f"DROP VIEW IF EXISTS {DATABASE}.predictions_mv",
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
    ORDER BY (version, time)
    SETTINGS {DEDUP}""",
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
    ORDER BY (source_topic, source_partition, source_offset)
    SETTINGS {DEDUP}""",
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
    ORDER BY (scorer, time)
    SETTINGS {DEDUP}""",
    # Added columns (existing stores migrate): average precision over the rolling window and
    # since the start, and precision among each event day's top `alerts_per_day` scores,
    # pooled over every day and over the last 7 days.
    f"""ALTER TABLE {DATABASE}.online_metrics
        ADD COLUMN IF NOT EXISTS ap_rolling Float64 DEFAULT nan,
        ADD COLUMN IF NOT EXISTS ap Float64 DEFAULT nan,
        ADD COLUMN IF NOT EXISTS p_at_k_day Float64 DEFAULT nan,
        ADD COLUMN IF NOT EXISTS p_at_k_day_rolling Float64 DEFAULT nan,
        ADD COLUMN IF NOT EXISTS alerts_per_day UInt32 DEFAULT 0""",
    # Stores created before these tables had a deduplication window: a retried insert (same
    # token) of online metrics, inference cost or dead letters is skipped from now on.
    *(
        f"ALTER TABLE {DATABASE}.{table} MODIFY SETTING {DEDUP}"
        for table in ("online_metrics", "model_usage", "dead_letters")
    ),
)
