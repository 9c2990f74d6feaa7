"""`streamlearn query`'s output: exact numbers, NULL apart from every value, UTC times with
their marker, and the same text in csv, json and ndjson."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamlearn.cli.output import (
    exact_float,
    iso_utc,
    json_text,
    render_csv,
    render_json,
    render_ndjson,
    rich_table,
    text_cell,
    write_parquet,
)

T = dt.datetime(2026, 3, 1, 12, 0, 5, 250000)


def sample() -> pa.Table:
    """Types ClickHouse's Arrow output carries (DateTime already restored to a timestamp)."""
    return pa.table(
        {
            "amount": pa.array([12345.67, None], pa.float64()),
            "ratio": pa.array([0.1, float("nan")], pa.float32()),
            "n": pa.array([3, None], pa.int64()),
            "at": pa.array([T, T], pa.timestamp("ms", tz="UTC")),
            "features": pa.array([[("a", 1.5)], []], pa.map_(pa.string(), pa.float64())),
            "card": pa.array(["card-1", None], pa.string()),
            "fee": pa.array([Decimal("1.2500"), None], pa.decimal128(10, 4)),
        }
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12345.67, "12345.67"),
        (0.1, "0.1"),
        (3.0, "3"),
        (1e16, "10000000000000000"),
        (1e-7, "1e-07"),
        (1e300, "1e+300"),
        (-2.5, "-2.5"),
        (float("nan"), "nan"),
        (float("-inf"), "-inf"),
    ],
)
def test_floats_print_exactly_and_read_back(value: float, text: str) -> None:
    assert exact_float(value) == text
    if value == value:
        assert float(text) == value


def test_a_float32_prints_as_the_float32_it_is() -> None:
    assert exact_float(0.10000000149011612, pa.float32()) == "0.1"
    assert exact_float(0.10000000149011612) == "0.10000000149011612"


def test_times_carry_the_utc_marker_with_their_precision() -> None:
    assert iso_utc(T, pa.timestamp("s")) == "2026-03-01T12:00:05Z"
    assert iso_utc(T, pa.timestamp("ms", tz="UTC")) == "2026-03-01T12:00:05.250Z"
    paris = dt.datetime(2026, 3, 1, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert iso_utc(paris, pa.timestamp("s")) == "2026-03-01T12:00:00Z"


def test_null_is_empty_in_text_and_null_in_json_but_nan_is_not_null_in_text() -> None:
    assert text_cell(None) == "" and json_text(None) == "null"
    assert text_cell(float("nan")) == "nan"
    assert json_text(float("nan")) == "null"  # JSON has no NaN: like ClickHouse's JSON
    assert text_cell("") == ""  # an empty string and NULL look alike in csv, as in ClickHouse


def test_containers_and_decimals_are_json_with_exact_numbers() -> None:
    assert json_text({"a": 1.5, "b": None}) == '{"a":1.5,"b":null}'
    assert (
        json_text(
            (1, "x", T), pa.struct([("a", pa.int8()), ("b", pa.string()), ("c", pa.timestamp("s"))])
        )
        == '[1,"x","2026-03-01T12:00:05Z"]'
    )
    assert json_text(Decimal("1.2500")) == "1.2500"
    assert json_text(True) == "true" and text_cell(False) == "false"


def test_csv_json_and_ndjson_say_the_same_thing() -> None:
    table = sample()
    assert render_csv(table) == (
        "amount,ratio,n,at,features,card,fee\n"
        '12345.67,0.1,3,2026-03-01T12:00:05.250Z,"{""a"":1.5}",card-1,1.2500\n'
        ",nan,,2026-03-01T12:00:05.250Z,{},,\n"
    )
    first = (
        '{"amount":12345.67,"ratio":0.1,"n":3,"at":"2026-03-01T12:00:05.250Z",'
        '"features":{"a":1.5},"card":"card-1","fee":1.2500}'
    )
    second = (
        '{"amount":null,"ratio":null,"n":null,"at":"2026-03-01T12:00:05.250Z",'
        '"features":{},"card":null,"fee":null}'
    )
    assert render_json(table) == f"[{first},{second}]\n"
    assert render_ndjson(table) == f"{first}\n{second}\n"
    assert json.loads(render_json(table))[0]["amount"] == 12345.67


def test_an_empty_result_keeps_its_header() -> None:
    empty = sample().slice(0, 0)
    assert render_csv(empty) == "amount,ratio,n,at,features,card,fee\n"
    assert render_json(empty) == "[]\n" and render_ndjson(empty) == ""


def test_table_view_right_aligns_numbers() -> None:
    view = rich_table(sample())
    assert [c.justify for c in view.columns][:3] == ["right", "right", "right"]
    assert view.columns[5].justify == "left"


def test_parquet_keeps_the_arrow_types(tmp_path: Path) -> None:
    write_parquet(sample(), tmp_path / "r.parquet")
    back = pq.read_table(tmp_path / "r.parquet")
    assert back.schema.field("features").type == pa.map_(pa.string(), pa.float64())
    assert back.column("amount").to_pylist() == [12345.67, None]
