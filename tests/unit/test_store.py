"""The store on embedded chdb: idempotent DDL, token dedup, the labels view, keyed tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.foundation.store import DATABASE, Store, batch_token, redact_url
from streamlearn.foundation.store.tables import PREDICTION_COLUMN_NAMES
from streamlearn.foundation.store.tables import TRANSACTION_COLUMN_NAMES as TXN_COLUMNS
from streamlearn.streams.outcomes import OUTCOME_COLUMNS

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def utc(value: dt.datetime) -> dt.datetime:
    """clickhouse-connect returns naive datetimes in UTC for DateTime64(3, 'UTC')."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def txn_row(tid: str, score: float = 0.25, offset: int = 0) -> list:
    return [
        tid,
        T0,
        "card-1",
        "m-1",
        10.0,
        "EUR",
        None,
        None,
        "pos",
        None,
        "v1",
        {"amount": 10.0},
        score,
        score,
        None,
        {"lightgbm": score},
        "v20260101T000000-abcdef",
        None,
        T0 + dt.timedelta(milliseconds=3),
        0,
        offset,
    ]


def outcome_row(tid: str, is_fraud: bool, at: dt.datetime, offset: int = 0) -> list:
    return [tid, is_fraud, at, at, 0, offset]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(f"chdb://{tmp_path_factory.mktemp('store')}/ch")
    s.migrate()
    # Without background merges, a raw count() shows exactly the rows each insert kept.
    for table in ("transactions", "predictions", "outcomes"):
        s.command(f"SYSTEM STOP MERGES {DATABASE}.{table}")
    yield s
    s.close()


def uid() -> str:
    return uuid4().hex


def count(store: Store, sql: str, **params: object) -> int:
    return int(store.query_rows(sql, params)[1][0][0])


def test_migrate_twice_is_idempotent(store: Store) -> None:
    def schema() -> list[tuple]:
        return store.query_rows(
            "SELECT table, name, type FROM system.columns WHERE database = {db:String} "
            "ORDER BY table, position",
            {"db": DATABASE},
        )[1]

    tables = sorted(store.query_rows(f"SHOW TABLES FROM {DATABASE}")[1])
    columns = schema()
    store.migrate()
    store.migrate()
    assert sorted(store.query_rows(f"SHOW TABLES FROM {DATABASE}")[1]) == tables
    assert schema() == columns
    names = {t[0] for t in tables}
    assert {"transactions", "predictions", "outcomes", "labels"} <= names
    assert {"models", "drift_events", "dead_letters"} <= names


def test_the_same_token_twice_keeps_one_copy(store: Store) -> None:
    tid = uid()
    rows = [outcome_row(tid, True, T0)]
    store.insert("outcomes", rows, OUTCOME_COLUMNS, token=f"test:{tid}")
    store.insert("outcomes", rows, OUTCOME_COLUMNS, token=f"test:{tid}")
    sql = "SELECT count() FROM streamlearn.outcomes WHERE transaction_id = {t:String}"
    assert count(store, sql, t=tid) == 1


def test_a_different_token_inserts_again_and_final_collapses_it(store: Store) -> None:
    tid = uid()
    rows = [txn_row(tid)]
    store.insert("transactions", rows, TXN_COLUMNS, token=f"a:{tid}")
    store.insert("transactions", rows, TXN_COLUMNS, token=f"b:{tid}")
    raw = "SELECT count() FROM streamlearn.transactions WHERE transaction_id = {t:String}"
    final = "SELECT count() FROM streamlearn.transactions FINAL WHERE transaction_id = {t:String}"
    assert count(store, raw, t=tid) == 2
    assert count(store, final, t=tid) == 1


def test_an_empty_batch_is_a_no_op(store: Store) -> None:
    store.insert("transactions", [], TXN_COLUMNS, token="empty")


def test_batch_token_names_the_range_and_hashes_the_content() -> None:
    a = batch_token("txn", 3, 10, 19, ["t1", "t2"])
    assert a.startswith("txn:3:10-19:") and a == batch_token("txn", 3, 10, 19, ["t1", "t2"])
    assert a != batch_token("txn", 3, 10, 19, ["t1", "t3"])
    assert batch_token("x", 0, 0, 0, ["ab", "c"]) != batch_token("x", 0, 0, 0, ["a", "bc"])


def test_labels_resolve_a_conflicting_outcome_to_the_latest(store: Store) -> None:
    chargeback, reversal, plain = uid(), uid(), uid()
    later = T0 + dt.timedelta(days=2)
    rows = [
        outcome_row(chargeback, True, T0, 1),
        outcome_row(chargeback, False, later, 2),
        outcome_row(reversal, False, T0, 3),
        outcome_row(reversal, True, later, 4),
        outcome_row(plain, True, T0, 5),
    ]
    store.insert("outcomes", rows, OUTCOME_COLUMNS, token=f"labels:{chargeback}")
    # An exact repeat of an outcome (another batch) collapses, it is not a second outcome.
    store.insert("outcomes", rows[4:], OUTCOME_COLUMNS, token=f"labels-again:{chargeback}")
    _, got = store.query_rows(
        "SELECT transaction_id, is_fraud, labeled_at, first_labeled_at, outcomes, conflicting "
        "FROM streamlearn.labels WHERE transaction_id IN {ids:Array(String)}",
        {"ids": [chargeback, reversal, plain]},
    )
    by_id = {r[0]: r[1:] for r in got}
    assert by_id[chargeback][0] is False and by_id[reversal][0] is True
    assert by_id[plain][0] is True
    assert utc(by_id[chargeback][1]) == later and utc(by_id[chargeback][2]) == T0
    assert [by_id[t][3] for t in (chargeback, reversal, plain)] == [2, 2, 1]
    assert [bool(by_id[t][4]) for t in (chargeback, reversal, plain)] == [True, True, False]


def test_one_row_per_transaction_under_final_however_it_was_rescored(store: Store) -> None:
    """S9: a rescoring under another champion, or an upstream resend with a corrected time in
    the same month, is one transaction: one row in transactions and in predictions (FINAL)."""
    tid = uid()
    first = txn_row(tid)
    again = txn_row(tid, score=0.5)
    again[1] = T0 + dt.timedelta(hours=3)  # corrected event time
    again[16] = "v20260102T000000-fedcba"  # another champion
    store.insert("transactions", [first], TXN_COLUMNS, token=f"rs-a:{tid}")
    store.insert("transactions", [again], TXN_COLUMNS, token=f"rs-b:{tid}")
    names = [c for c in TXN_COLUMNS if c in PREDICTION_COLUMN_NAMES]
    for row in (first, again):
        picked = [v for c, v in zip(TXN_COLUMNS, row, strict=True) if c in names]
        store.insert("predictions", [picked], names, token=f"p:{row[16]}:{tid}")
    for table in ("transactions", "predictions"):
        sql = (
            f"SELECT model_version FROM streamlearn.{table} FINAL "
            "WHERE transaction_id = {t:String}"
        )
        _, rows = store.query_rows(sql, {"t": tid})
        assert rows == [("v20260102T000000-fedcba",)], table  # the latest scoring


def test_a_store_of_the_older_layout_is_rebuilt_under_the_transaction_key(store: Store) -> None:
    """Stores made before: predictions keyed by model version and fed by a view; migrate
    rebuilds the table (rows kept) and drops the view."""
    tid = uid()
    store.command(f"DROP TABLE {DATABASE}.predictions")
    store.command(
        f"""CREATE TABLE {DATABASE}.predictions (transaction_id String,
        event_time DateTime64(3, 'UTC'), card_id String, score Float64,
        model_version LowCardinality(String), lightgbm_score Nullable(Float64),
        river_score Nullable(Float64), scores Map(LowCardinality(String), Float64),
        scored_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(event_time)
        ORDER BY (toDate(event_time), model_version, transaction_id)"""
    )
    store.command(
        f"""CREATE MATERIALIZED VIEW {DATABASE}.predictions_mv TO {DATABASE}.predictions AS
        SELECT transaction_id, event_time, card_id, score, model_version, lightgbm_score,
        river_score, scores, scored_at FROM {DATABASE}.transactions"""
    )
    first, again = txn_row(tid), txn_row(tid, score=0.5)
    again[16] = "v20260102T000000-fedcba"
    store.insert("transactions", [first], TXN_COLUMNS, token=f"old-a:{tid}")
    store.insert("transactions", [again], TXN_COLUMNS, token=f"old-b:{tid}")
    sql = "SELECT count() FROM streamlearn.predictions FINAL WHERE transaction_id = {t:String}"
    assert count(store, sql, t=tid) == 2  # the old key: one row per model version
    store.migrate()
    assert count(store, sql, t=tid) == 1
    _, rows = store.query_rows(
        "SELECT sorting_key FROM system.tables "
        "WHERE database = 'streamlearn' AND name = 'predictions'"
    )
    assert rows == [("transaction_id",)]
    names = {r[0] for r in store.query_rows(f"SHOW TABLES FROM {DATABASE}")[1]}
    assert "predictions_mv" not in names and "predictions_rekeyed" not in names


def test_bad_sql_is_store_unavailable_in_one_line(store: Store) -> None:
    with pytest.raises(StoreUnavailable) as err:
        store.query_rows("SELECT * FROM streamlearn.no_such_table")
    assert "\n" not in str(err.value)
    with pytest.raises(StoreUnavailable, match="insert into no_such_table failed"):
        store.insert("no_such_table", [[1]], ["x"])


def test_query_df_and_arrow(store: Store) -> None:
    df = store.query_df("SELECT 1 AS one, 'a' AS s")
    assert list(df.columns) == ["one", "s"] and int(df["one"][0]) == 1
    table = store.query_arrow("SELECT number FROM numbers(3)")
    assert table.num_rows == 3


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://default:s3cret@ch:8123/streamlearn", "http://default:***@ch:8123/streamlearn"),
        ("https://u:p%40ss@host/db?secure=1", "https://u:***@host/db?secure=1"),
        ("http://:s3cret@host:8123", "http://:***@host:8123"),
        ("http://default@ch:8123/db", "http://default@ch:8123/db"),
        ("http://ch:8123/db", "http://ch:8123/db"),
        ("chdb:///var/lib/streamlearn/clickhouse", "chdb:///var/lib/streamlearn/clickhouse"),
    ],
)
def test_redact_url_masks_passwords(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_keeps_an_ipv6_host() -> None:
    assert redact_url("http://u:pw@[::1]:8123/db") == "http://u:***@[::1]:8123/db"


def test_a_url_with_a_bad_port_is_store_unavailable_not_a_crash() -> None:
    assert "pw" not in redact_url("http://u:pw@host:abc/db")
    with pytest.raises(StoreUnavailable):
        Store("http://u:pw@host:abc/db")


def test_store_error_never_shows_the_password() -> None:
    with pytest.raises(StoreUnavailable) as err:
        Store("ftp://u:topsecret@127.0.0.1:1/db")
    assert "topsecret" not in str(err.value) and "***" in str(err.value)


def test_store_creates_the_parent_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked without opening a second chdb session: the path is made before connecting."""
    import sys
    import types

    dsns: list[str] = []
    fake = types.ModuleType("clickhouse_connect")
    fake.get_client = lambda dsn, **_: dsns.append(dsn) or object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "clickhouse_connect", fake)
    s = Store(f"chdb://{tmp_path}/deep/er/ch")
    assert (tmp_path / "deep" / "er").is_dir() and s.embedded
    assert dsns == [f"chdb://{tmp_path}/deep/er/ch"]


def test_an_old_online_metrics_table_gains_the_new_columns(store: Store) -> None:
    """A store made before AP and daily-alert precision existed upgrades in place."""
    import math

    from streamlearn.learners.metrics import Scorecard
    from streamlearn.streams.monitoring import METRIC_COLUMNS, metric_rows

    store.command(f"DROP TABLE IF EXISTS {DATABASE}.online_metrics")
    store.command(
        f"""CREATE TABLE {DATABASE}.online_metrics (time DateTime64(3, 'UTC'), worker String,
        scorer LowCardinality(String), labels UInt64, positives UInt64, auc_rolling Float64,
        auc Float64, logloss Float64) ENGINE = MergeTree ORDER BY (scorer, time)"""
    )
    store.insert("online_metrics", [[T0, "w0", "served", 2, 1, 1.0, 1.0, 0.1]], METRIC_COLUMNS[:8])
    store.migrate()
    card = Scorecard()
    card.update(True, {"served": 0.9}, 0)
    card.update(False, {"served": 0.2}, 0)
    store.insert("online_metrics", metric_rows(card.snapshot(), "w1", T0), METRIC_COLUMNS)
    _, rows = store.query_rows(
        f"SELECT worker, ap, p_at_k_day, alerts_per_day FROM {DATABASE}.online_metrics "
        "ORDER BY worker"
    )
    old, new = rows
    assert old[0] == "w0" and math.isnan(old[1]) and old[3] == 0
    assert new == ("w1", 1.0, 0.5, 50)
