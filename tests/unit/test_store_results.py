"""A result read as Arrow (how the worker proxies queries) gets the shapes Store.query_df and
Store.query_rows give, on a real embedded store: DateTime back from UInt32, Enum labels, Map
as a dict, Tuple as a tuple, nullable integers, naive UTC times."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pytest

from streamlearn.foundation.store import Store
from streamlearn.foundation.store.results import describe_sql, to_frame, to_rows, typed_arrow
from tests.integration.report_data import seed

TYPED_SQL = """
SELECT
  toDateTime('2026-01-02 03:04:05') + number AS dt,
  toDateTime('2026-01-02 03:04:05', 'Europe/Paris') AS dt_paris,
  toDateTime64('2026-01-02 03:04:05.120', 3, 'UTC') AS dt64,
  if(number = 0, NULL, toDateTime('2026-01-02 00:00:00')) AS dt_null,
  toDate('2026-01-02') AS d,
  CAST(if(number = 0, 'b', 'a') AS Enum8('a' = 1, 'b' = 2)) AS e,
  map('amount', 12345.67, 'ratio', 0.5) AS features,
  ['x', 'y'] AS names,
  (number, 'x') AS pair,
  if(number = 0, NULL, number) AS n_null,
  toUInt32(number) AS u32,
  toInt8(-1) AS i8,
  toUInt64(number) AS u64,
  if(number = 0, NULL, 'text') AS s_null,
  toLowCardinality('lc') AS lc,
  12345.67 AS f,
  toFloat32(0.1) AS f32,
  nan AS not_a_number,
  CAST(NULL AS Nullable(Float64)) AS f_null,
  true AS b,
  toDecimal64(1.25, 2) AS dec
FROM numbers(3)
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = Store(f"chdb://{tmp_path_factory.mktemp('results')}/ch")
    s.migrate()
    yield s
    s.close()


def test_a_frame_from_arrow_is_the_frame_store_gives(store: Store) -> None:
    direct = store.query_df(TYPED_SQL)
    via_arrow = to_frame(typed_arrow(store.query_arrow, TYPED_SQL, None))
    pd.testing.assert_frame_equal(via_arrow, direct)
    assert str(direct["dt"].dtype) == "datetime64[s]" and direct["features"][0]["ratio"] == 0.5


def test_rows_from_arrow_are_the_rows_store_gives(store: Store) -> None:
    cols, rows = store.query_rows(TYPED_SQL)
    got_cols, got_rows = to_rows(typed_arrow(store.query_arrow, TYPED_SQL, None))
    assert got_cols == cols
    # repr: NaN is not equal to itself, and the types must match, not just the values.
    assert [list(map(repr, r)) for r in got_rows] == [list(map(repr, r)) for r in rows]


def test_parameters_reach_the_describe_too(store: Store) -> None:
    sql = "SELECT toDateTime({t:String}) AS t, {n:UInt32} AS n"
    params = {"t": "2026-03-01 12:00:00", "n": "7"}
    assert to_rows(typed_arrow(store.query_arrow, sql, params)) == store.query_rows(sql, params)


def test_no_describe_when_nothing_is_ambiguous(store: Store) -> None:
    calls: list[str] = []

    def counting(sql: str, params, **settings) -> pa.Table:
        calls.append(sql)
        return store.query_arrow(sql, params, **settings)

    typed_arrow(counting, "SELECT 'a' AS s, 1.5 AS f, toUInt64(1) AS n", None)
    assert len(calls) == 1
    typed_arrow(counting, "SELECT now() AS t", None)
    assert calls[1:] == ["SELECT now() AS t", describe_sql("SELECT now() AS t")]


def test_a_statement_describe_cannot_wrap_comes_back_as_is(store: Store) -> None:
    table = typed_arrow(store.query_arrow, "SHOW TABLES FROM streamlearn", None)
    assert "transactions" in table.column(0).to_pylist()


def test_the_project_tables_read_the_same_both_ways(store: Store) -> None:
    seed(store, n=300)  # chdb admits one store path per process: the module's store
    for table in ("transactions", "models", "online_metrics", "drift_events", "model_usage"):
        sql = f"SELECT * FROM streamlearn.{table} ORDER BY 1, 2"
        direct = store.query_df(sql)
        assert len(direct), table
        pd.testing.assert_frame_equal(
            to_frame(typed_arrow(store.query_arrow, sql, None)), direct, obj=table
        )
        assert to_rows(typed_arrow(store.query_arrow, sql, None)) == store.query_rows(sql)


def test_an_empty_result_keeps_its_columns(store: Store) -> None:
    """The one difference left: clickhouse-connect drops the columns of an empty result; the
    Arrow side keeps them, which code indexing columns of an empty frame prefers."""
    sql = "SELECT * FROM streamlearn.models FINAL WHERE 0"
    assert store.query_rows(sql) == ([], [])
    cols, rows = to_rows(typed_arrow(store.query_arrow, sql, None))
    assert "version" in cols and rows == []
