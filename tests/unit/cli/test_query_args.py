"""`query`'s inputs (SQL from an argument, a file or stdin; --param; the row cap) and how a
store error is sorted into refused or unreachable; `report --since`."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

from streamlearn.cli.query import capped_sql, parse_params, read_sql, refused_or_unreachable
from streamlearn.cli.report import parse_since
from streamlearn.foundation.errors import ConfigError, QueryRefused, StoreUnavailable


def test_sql_from_the_argument_a_file_or_stdin(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "q.sql").write_text("SELECT 2")
    assert read_sql("SELECT 1", None) == "SELECT 1"
    assert read_sql(None, tmp_path / "q.sql") == "SELECT 2"
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT 3\n"))
    assert read_sql("-", None) == "SELECT 3\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT 4"))
    assert read_sql(None, Path("-")) == "SELECT 4"


@pytest.mark.parametrize(
    ("sql", "file", "needle"),
    [
        (None, None, "argument or with -f"),
        ("SELECT 1", Path("q.sql"), "not both"),
        ("  ", None, "empty"),
        (None, Path("/nonexistent/q.sql"), "cannot read -f"),
    ],
)
def test_sql_input_mistakes_are_usage_errors(sql, file, needle) -> None:
    with pytest.raises(ConfigError, match=needle):
        read_sql(sql, file)


def test_params_are_name_value_pairs_kept_as_text() -> None:
    assert parse_params(["id=card-1", "since=2026-03-01 00:00:00", "e="]) == {
        "id": "card-1",
        "since": "2026-03-01 00:00:00",
        "e": "",
    }
    for bad in ("id", "=x", "1x=2", "a b=c"):
        with pytest.raises(ConfigError, match="NAME=VALUE"):
            parse_params([bad])


def test_the_cap_wraps_selects_only() -> None:
    assert capped_sql("SELECT 1;", 10) == "SELECT * FROM (\nSELECT 1\n) LIMIT 11"
    assert capped_sql("with x AS (SELECT 1) SELECT * FROM x", 5).endswith(") LIMIT 6")
    assert capped_sql("SELECT 1 -- note", 5) == "SELECT * FROM (\nSELECT 1 -- note\n) LIMIT 6"
    assert capped_sql("SELECT 1", 0) == "SELECT 1"
    assert capped_sql("SHOW TABLES FROM streamlearn", 5) == "SHOW TABLES FROM streamlearn"
    # A subquery's SETTINGS would be ignored where the top level's is refused: not wrapped.
    assert capped_sql("SELECT 1 SETTINGS readonly = 0", 5) == "SELECT 1 SETTINGS readonly = 0"


def test_clickhouse_errors_are_refusals_and_the_rest_unreachable() -> None:
    syntax = StoreUnavailable("ClickHouse query failed: Code: 62. DB::Exception: Syntax error")
    assert isinstance(refused_or_unreachable(syntax), QueryRefused)
    readonly = StoreUnavailable("Code: 164. DB::Exception: Cannot execute query in readonly mode")
    refused = refused_or_unreachable(readonly)
    assert isinstance(refused, QueryRefused) and "is read-only" in str(refused)
    down = StoreUnavailable("cannot open ClickHouse at http://h:8123: Connection refused")
    assert refused_or_unreachable(down) is down


def test_since_takes_utc_times_and_ages() -> None:
    now = dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.UTC)
    assert parse_since(None, now) is None
    assert parse_since("7d", now) == dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    assert parse_since("90m", now) == now - dt.timedelta(minutes=90)
    assert parse_since("2026-03-01", now) == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert parse_since("2026-03-01T13:00+01:00", now) == dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    with pytest.raises(ConfigError, match="--since"):
        parse_since("last week", now)
