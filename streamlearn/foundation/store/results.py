"""ClickHouse results that arrive as Arrow, given the shapes clickhouse-connect gives natively.

ClickHouse's Arrow output writes DateTime as UInt32 and Enum as its integer, so those columns
get their type back from `DESCRIBE (query)`; then `to_frame` and `to_rows` return what
`Store.query_df` / `Store.query_rows` return (naive UTC datetimes, dict maps, tuples, nullable
integer dtypes), so a result has one shape whether a worker proxied it or not.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.datatypes.registry import get_from_name

from streamlearn.foundation.errors import StoreUnavailable

QueryArrow = Callable[..., pa.Table]
# Arrow types that stand for more than one ClickHouse type (DateTime/UInt32, Enum/Int8|16).
_AMBIGUOUS = (pa.uint32(), pa.int8(), pa.int16())
ENUM_KEY = b"clickhouse_enum"
_ENUM_ITEM = re.compile(r"'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)")
_NULLABLE_INTS = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
}


def typed_arrow(
    query_arrow: QueryArrow, sql: str, parameters: Mapping[str, Any] | None, **settings: Any
) -> pa.Table:
    """Run sql through query_arrow; DateTime and Enum columns come back with their types.

    The DESCRIBE round trip happens only when the Arrow schema holds an ambiguous integer
    type; a statement DESCRIBE cannot wrap (SHOW, EXPLAIN) keeps the columns as they came.
    """
    table = query_arrow(sql, parameters, **settings)
    if not any(_has_ambiguous(f.type) for f in table.schema):
        return table
    try:
        described = query_arrow(describe_sql(sql), parameters, **settings)
    except StoreUnavailable:
        return table
    types = described.column("type").to_pylist()
    if len(types) != table.num_columns:
        return table
    return restore_types(table, types)


def describe_sql(sql: str) -> str:
    """DESCRIBE of a query's result columns (the newline ends a trailing -- comment)."""
    return f"DESCRIBE TABLE (\n{sql.strip().rstrip(';')}\n)"


def restore_types(table: pa.Table, ch_types: list[str]) -> pa.Table:
    """The table with DateTime columns as UTC timestamps and Enum columns as their labels."""
    columns, fields = [], []
    for field, column, ch_name in zip(table.schema, table.columns, ch_types, strict=True):
        ch = get_from_name(ch_name)
        if ch.base_type in ("Enum8", "Enum16") and pa.types.is_integer(column.type):
            column = _enum_labels(column, ch_name)
            # Marked: clickhouse-connect gives Enum labels pandas' default str dtype.
            field = field.with_type(pa.string()).with_metadata({ENUM_KEY: ch_name})
        elif (target := _restored(column.type, ch)) != column.type:
            # UInt32 does not cast to a timestamp directly; through Int64 it does, nested too.
            column = column.cast(_restored(column.type, ch, as_seconds=True)).cast(target)
            field = field.with_type(target)
        columns.append(column)
        fields.append(field)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def to_frame(table: pa.Table) -> pd.DataFrame:
    """What clickhouse-connect's query_df gives for the same result (Store.query_df)."""
    series = [_series(field, table.column(i)) for i, field in enumerate(table.schema)]
    frame = pd.concat(series, axis=1) if series else pd.DataFrame()
    frame.columns = pd.Index(table.column_names)
    return frame


def to_rows(table: pa.Table) -> tuple[list[str], list[tuple]]:
    """What clickhouse-connect's query gives for the same result (Store.query_rows)."""
    columns = [
        [python_value(v, field.type) for v in table.column(i).to_pylist()]
        for i, field in enumerate(table.schema)
    ]
    return list(table.column_names), list(zip(*columns, strict=True))


def python_value(value: Any, arrow_type: pa.DataType) -> Any:
    """One Arrow value as clickhouse-connect returns it: naive UTC datetimes, Map as a dict,
    Tuple as a tuple, Array as a list."""
    if value is None:
        return None
    if pa.types.is_timestamp(arrow_type):
        return naive_utc(value)
    if pa.types.is_map(arrow_type):
        key_t, item_t = arrow_type.key_type, arrow_type.item_type
        return {python_value(k, key_t): python_value(v, item_t) for k, v in value}
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return [python_value(v, arrow_type.value_type) for v in value]
    if pa.types.is_struct(arrow_type):
        return tuple(python_value(value[field.name], field.type) for field in arrow_type.fields)
    return value


def naive_utc(value: dt.datetime) -> dt.datetime:
    """An aware datetime as naive UTC, the way clickhouse-connect returns DateTime columns."""
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _has_ambiguous(arrow_type: pa.DataType) -> bool:
    if arrow_type in _AMBIGUOUS:
        return True
    return any(_has_ambiguous(arrow_type.field(i).type) for i in range(arrow_type.num_fields))


def _restored(arrow_type: pa.DataType, ch: Any, *, as_seconds: bool = False) -> pa.DataType:
    """arrow_type with each UInt32 that ClickHouse meant as a DateTime made a timestamp
    (or, with as_seconds, the Int64 step of that cast)."""
    base = ch.base_type
    if base == "DateTime" and pa.types.is_uint32(arrow_type):
        return pa.int64() if as_seconds else pa.timestamp("s", tz="UTC")
    if base == "Array" and pa.types.is_list(arrow_type):
        item = _restored(arrow_type.value_type, ch.element_type, as_seconds=as_seconds)
        return pa.list_(arrow_type.value_field.with_type(item))
    if base == "Map" and pa.types.is_map(arrow_type):
        return pa.map_(
            arrow_type.key_field.with_type(
                _restored(arrow_type.key_type, ch.key_type, as_seconds=as_seconds)
            ),
            arrow_type.item_field.with_type(
                _restored(arrow_type.item_type, ch.value_type, as_seconds=as_seconds)
            ),
        )
    if base == "Tuple" and pa.types.is_struct(arrow_type):
        return pa.struct(
            [
                field.with_type(_restored(field.type, sub, as_seconds=as_seconds))
                for field, sub in zip(arrow_type.fields, ch.element_types, strict=True)
            ]
        )
    return arrow_type


def _enum_labels(column: pa.ChunkedArray, ch_name: str) -> pa.ChunkedArray:
    """An Enum column's integers as its labels (ClickHouse's Arrow output drops them)."""
    labels = {int(n): label.replace("\\'", "'") for label, n in _ENUM_ITEM.findall(ch_name)}
    codes = sorted(labels)
    index = pc.index_in(column, value_set=pa.array(codes, column.type))
    return pc.take(pa.array([labels[c] for c in codes], pa.string()), index)


def _series(field: pa.Field, column: pa.ChunkedArray) -> pd.Series:
    t = field.type
    if pa.types.is_timestamp(t):
        times = column.to_pandas()
        return times.dt.tz_convert("UTC").dt.tz_localize(None) if t.tz else times
    if pa.types.is_date(t):
        return column.cast(pa.timestamp("s")).to_pandas()
    if pa.types.is_integer(t) and field.nullable:
        return column.to_pandas(types_mapper=_NULLABLE_INTS.get)
    if (pa.types.is_string(t) or pa.types.is_dictionary(t)) and ENUM_KEY not in (
        field.metadata or {}
    ):
        return column.to_pandas().astype(pd.StringDtype(na_value=pd.NA))
    if pa.types.is_nested(t):
        return pd.Series([python_value(v, t) for v in column.to_pylist()], dtype=object)
    return column.to_pandas()
