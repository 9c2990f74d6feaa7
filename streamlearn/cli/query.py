"""`streamlearn query`: read-only SQL with server-side parameters, a row cap, and exact output."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.console import Console

from streamlearn.cli import output
from streamlearn.cli.common import StateDir, StoreUrl, console, load_settings
from streamlearn.foundation.errors import (
    ConfigError,
    QueryRefused,
    StoreUnavailable,
    StreamlearnError,
)
from streamlearn.foundation.store.access import open_store, read_only_error, read_only_refusal
from streamlearn.foundation.store.results import typed_arrow

DEFAULT_MAX_ROWS = 10_000
# A ClickHouse error (it answered, and refused this SQL) as opposed to an unreachable store.
CLICKHOUSE_ERROR = re.compile(r"Code: \d+|DB::Exception")
SETTINGS = re.compile(r"\bSETTINGS\b", re.IGNORECASE)
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def query(
    sql: Annotated[
        str | None,
        typer.Argument(help="Read-only SQL on the streamlearn tables; - reads it from stdin."),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the SQL from FILE (- for stdin).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table, csv, json, ndjson or parquet (needs --out).")
    ] = "table",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="NAME=VALUE for a {NAME:Type} placeholder, bound by ClickHouse (repeatable).",
        ),
    ] = None,
    max_rows: Annotated[
        int, typer.Option(min=0, help="Most rows returned (0: no cap); says so when it cuts.")
    ] = DEFAULT_MAX_ROWS,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the result to FILE instead of stdout.")
    ] = None,
    store: StoreUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Run read-only SQL against the analysts' tables (through the worker if it owns chdb)."""
    if fmt not in output.FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(output.FORMATS)}, not {fmt!r}")
    if fmt == "parquet" and out is None:
        raise ConfigError("--format parquet writes a file: give --out FILE")
    text = read_sql(sql, file)
    refusal = read_only_refusal(text)
    if refusal:
        raise QueryRefused(refusal)
    parameters = parse_params(param or [])
    st = open_store(load_settings(store=store, state_dir=state_dir), readonly=True)
    try:
        table = typed_arrow(st.query_arrow, capped_sql(text, max_rows), parameters, readonly=1)
    except StoreUnavailable as exc:
        raise refused_or_unreachable(exc) from exc
    if max_rows and table.num_rows > max_rows:
        table = table.slice(0, max_rows)
        print(
            f"streamlearn: only the first {max_rows:,} rows are shown; there are more "
            "(--max-rows N raises the cap, 0 removes it)",
            file=sys.stderr,
        )
    write(table, fmt, out)


def read_sql(sql: str | None, file: Path | None) -> str:
    """The SQL from the argument, -f FILE, or stdin (`-` for either)."""
    if (sql is None) == (file is None):
        raise ConfigError("give the SQL as an argument or with -f FILE (- reads stdin), not both")
    if sql == "-" or file == Path("-"):
        text = sys.stdin.read()
    elif file is not None:
        try:
            text = file.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read -f {file}: {exc.strerror or exc}") from exc
    else:
        text = sql or ""
    if not text.strip():
        raise ConfigError("the SQL is empty")
    return text


def parse_params(pairs: list[str]) -> dict[str, str]:
    """--param NAME=VALUE pairs; ClickHouse parses each value as its placeholder's type."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not PARAM_NAME.fullmatch(name.strip()):
            raise ConfigError(f"--param takes NAME=VALUE, got {pair!r}")
        params[name.strip()] = value
    return params


def capped_sql(sql: str, max_rows: int) -> str:
    """A SELECT wrapped in LIMIT max_rows + 1, so the cap is applied by ClickHouse and a cut
    can be told apart from an exact fit; other statements (SHOW, EXPLAIN) as they are.

    A query with a SETTINGS clause is not wrapped either (the cap is then applied here):
    inside a subquery ClickHouse would ignore a `SETTINGS readonly = 0` it refuses at the top.
    """
    body = sql.strip().rstrip(";")
    words = body.lstrip("(").split(None, 1)
    verb = words[0].upper() if words else ""
    if not max_rows or verb not in ("SELECT", "WITH") or SETTINGS.search(body):
        return body
    return f"SELECT * FROM (\n{body}\n) LIMIT {max_rows + 1}"


def refused_or_unreachable(exc: StoreUnavailable) -> StreamlearnError:
    """A store that answered with an error refused the query; anything else is unreachable."""
    readonly = read_only_error(exc)
    if readonly is not exc:  # a write, or (through a worker) SQL its policy refuses
        return QueryRefused(str(readonly))
    if CLICKHOUSE_ERROR.search(str(exc)):
        return QueryRefused(str(exc))
    return exc


def write(table: pa.Table, fmt: str, out: Path | None) -> None:
    """The result to stdout, or to out (parquet always goes to a file)."""
    if fmt == "parquet" and out is not None:
        output.write_parquet(table, out)
    elif fmt == "table":
        if out is None:
            console.print(output.rich_table(table))
            return
        with out.open("w") as fh:
            Console(file=fh, width=max(80, console.width), no_color=True).print(
                output.rich_table(table)
            )
    else:
        render = {"csv": output.render_csv, "json": output.render_json}.get(
            fmt, output.render_ndjson
        )
        if out is None:
            sys.stdout.write(render(table))
        else:
            out.write_text(render(table))
