"""How `streamlearn query` writes a result: exact numbers, NULL apart from every value, times in
UTC with their marker, in table, csv, json, ndjson or parquet form (pure functions)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.table import Table

from streamlearn.foundation.store.results import to_rows

FORMATS = ("table", "csv", "json", "ndjson", "parquet")
TIMESPEC = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "microseconds"}
# Floats print positionally inside this range, like ClickHouse, and in shortest scientific
# notation outside it (a million digits of zeros helps nobody).
POSITIONAL = (1e-6, 1e21)


def exact_float(value: float, arrow_type: pa.DataType | None = None) -> str:
    """The shortest text that reads back as the same float (a Float32 as a Float32)."""
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    number: Any = np.float32(value) if arrow_type == pa.float32() else value
    if value == 0 or POSITIONAL[0] <= abs(value) < POSITIONAL[1]:
        return np.format_float_positional(number, trim="-")
    return np.format_float_scientific(number, trim="-")


def iso_utc(value: dt.datetime, arrow_type: pa.DataType | None = None) -> str:
    """ISO 8601 with the UTC marker; a naive datetime is UTC (how the store returns them)."""
    unit = arrow_type.unit if isinstance(arrow_type, pa.TimestampType) else "us"
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec=TIMESPEC[unit]) + "Z"


def text_cell(value: Any, arrow_type: pa.DataType | None = None) -> str:
    """A value for csv or a table: NULL is empty, containers are JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return exact_float(value, arrow_type)
    if isinstance(value, dt.datetime):
        return iso_utc(value, arrow_type)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json_text(value, arrow_type)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def json_text(value: Any, arrow_type: pa.DataType | None = None) -> str:
    """A value as JSON text, numbers exact (Decimal too); NaN and infinities are null, as in
    ClickHouse's own JSON output, since JSON has no such numbers."""
    if value is None:
        return "null"
    if isinstance(value, bool | int):
        return text_cell(value)
    if isinstance(value, float):
        return exact_float(value, arrow_type) if math.isfinite(value) else "null"
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else "null"
    if isinstance(value, dict):
        items = _map_types(arrow_type)
        return (
            "{"
            + ",".join(
                f"{json.dumps(text_cell(k))}:{json_text(v, items)}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, list | tuple):
        parts = zip(value, _element_types(arrow_type, len(value)), strict=True)
        return "[" + ",".join(json_text(v, t) for v, t in parts) + "]"
    return json.dumps(text_cell(value, arrow_type), ensure_ascii=False)


def _map_types(arrow_type: pa.DataType | None) -> pa.DataType | None:
    return arrow_type.item_type if isinstance(arrow_type, pa.MapType) else None


def _element_types(arrow_type: pa.DataType | None, n: int) -> list[pa.DataType | None]:
    if isinstance(arrow_type, pa.StructType):
        return [field.type for field in arrow_type.fields]
    if isinstance(arrow_type, pa.ListType | pa.LargeListType):
        return [arrow_type.value_type] * n
    return [None] * n


def rows(table: pa.Table) -> Iterator[list[tuple[Any, pa.DataType]]]:
    """Each row as (value, Arrow type) pairs, values as the store returns them."""
    types = [field.type for field in table.schema]
    for record in to_rows(table)[1]:
        yield list(zip(record, types, strict=True))


def render_csv(table: pa.Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in rows(table):
        writer.writerow([text_cell(v, t) for v, t in row])
    return out.getvalue()


def _records(table: pa.Table) -> Iterator[str]:
    names = [json.dumps(name, ensure_ascii=False) for name in table.column_names]
    for row in rows(table):
        yield (
            "{"
            + ",".join(f"{n}:{json_text(v, t)}" for n, (v, t) in zip(names, row, strict=True))
            + "}"
        )


def render_json(table: pa.Table) -> str:
    return "[" + ",".join(_records(table)) + "]\n"


def render_ndjson(table: pa.Table) -> str:
    return "".join(record + "\n" for record in _records(table))


def rich_table(table: pa.Table) -> Table:
    """A table for people; numbers right-aligned, NULL empty."""
    view = Table()
    for field in table.schema:
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        view.add_column(field.name, justify="right" if numeric else "left")
    for row in rows(table):
        view.add_row(*(text_cell(v, t) for v, t in row))
    return view


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path)
