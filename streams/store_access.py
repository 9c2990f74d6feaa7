"""The worker's /store/* endpoints: the CLI's access to the store the worker owns, guarded.

A request is served only if it carries the token the worker wrote at start to
`<state dir>/worker.token` (0600), names this machine's loopback address in `Host` (no DNS
rebinding), carries no foreign `Origin` (no cross-site page) and is `application/json` (which
a browser cannot send cross-site without a preflight this server never approves). Its SQL is
then parsed by ClickHouse (EXPLAIN AST) and must stay inside the streamlearn database
(streams/sql_policy.py). Reads run on the worker's analyst session (read-only for good, one
ClickHouse thread, niced: streams/sink.py); a read-only request's statement also carries
max_execution_time in its own SETTINGS clause. Inserts and commands run on the write session.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

import faust
from faust.web import Request, Response, View

from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store.access import (
    OUTSIDE_REFUSAL,
    TOKEN_HEADER,
    create_token,
    decode_rows,
)
from streamlearn.streams.sink import StoreSink
from streamlearn.streams.sql_policy import refusal as sql_refusal
from streamlearn.streams.sql_policy import with_limits

ARROW = "application/vnd.apache.arrow.stream"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]"})
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _host_and_port(host: str) -> tuple[str, str]:
    if host.startswith("["):  # [::1]:6066
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else rest
    name, _, port = host.partition(":")
    return name, port


def address_refusal(headers: Mapping[str, str], port: int) -> tuple[int, str] | None:
    """(403, reason) unless Host is this worker's loopback address and no foreign Origin
    came with it (no DNS rebinding, no cross-site page), else None (pure)."""
    host = headers.get("Host", "")
    name, host_port = _host_and_port(host)
    if name.lower() not in LOOPBACK or host_port not in ("", str(port)):
        return 403, f"Host {host!r} is not this worker's address (127.0.0.1:{port})"
    origin = headers.get("Origin")
    if origin is not None and origin.lower() not in {f"http://{h}:{port}" for h in LOOPBACK}:
        return 403, f"cross-origin request from {origin!r} refused"
    return None


def request_refusal(headers: Mapping[str, str], port: int, token: str) -> tuple[int, str] | None:
    """(HTTP status, reason) if the request may not be served, else None (pure)."""
    refused = address_refusal(headers, port)
    if refused is not None:
        return refused
    sent = headers.get(TOKEN_HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode(), token.encode()):
        return 401, f"missing or wrong {TOKEN_HEADER} (the worker's token file)"
    content_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return 415, f"Content-Type must be application/json, not {content_type or 'none'!r}"
    return None


async def check_sql(
    settings: Settings,
    sink: StoreSink,
    sql: Any,
    parameters: Any,
    *,
    readonly: bool,
    write: bool = False,
) -> tuple[str | None, str]:
    """(why ClickHouse's parse of this SQL keeps it from running here, or None; the SQL to run:
    a read-only statement carries the worker's time limit)."""
    if not isinstance(sql, str) or not sql.strip():
        return "no SQL", ""
    lane = sink.analyst
    try:
        _, rows = await lane.call(lane.store.query_rows, "EXPLAIN AST " + sql, parameters)
    except StoreUnavailable as exc:
        return f"it does not parse: {exc}", ""
    lines = [str(r[0]) for r in rows]
    reason = sql_refusal(lines, readonly=readonly, write=write)
    if reason:
        return f"{OUTSIDE_REFUSAL} {reason}", ""
    if readonly:
        # The analyst session is read-only already (readonly cannot be set again there).
        sql = with_limits(sql, lines, settings.query_max_execution_s, readonly_clause=False)
    return None, sql


def arrow_or_recover(store: Any, sql: str, parameters: Any) -> Any:
    """store.query_arrow, on the store thread; after a failure, one probe before anything else
    runs there: with clickhouse-connect's chdb backend an Arrow query that fails while it runs
    (a timeout, throwIf) leaves a garbled answer for the next call on the connection."""
    try:
        return store.query_arrow(sql, parameters)
    except StoreUnavailable:
        with contextlib.suppress(StoreUnavailable):
            store.query_rows("SELECT 1")
        raise


async def admitted(
    view: View, request: Request, port: int, token: str
) -> dict[str, Any] | Response:
    """The request's JSON payload, or the response that refuses it."""
    refused = request_refusal(request.headers, port, token)
    if refused is not None:
        return view.text(refused[1], status=refused[0])
    try:
        payload = json.loads(await view.read_request_content(request))
    except ValueError:
        return view.text("the body is not JSON", status=400)
    if not isinstance(payload, dict):
        return view.text("the body is not a JSON object", status=400)
    return payload


async def serve_query(
    view: View, settings: Settings, sink: StoreSink, payload: dict[str, Any]
) -> Response:
    readonly = bool(payload.get("readonly"))
    parameters = payload.get("parameters")
    reason, sql = await check_sql(settings, sink, payload.get("sql"), parameters, readonly=readonly)
    if reason:
        return view.text(reason, status=403)
    try:
        # The client's settings are never used: the statement carries the worker's.
        lane = sink.analyst
        table = await lane.call(arrow_or_recover, lane.store, sql, parameters)
    except StoreUnavailable as exc:
        return view.text(str(exc), status=400)
    import pyarrow as pa

    out = pa.BufferOutputStream()
    with pa.ipc.new_stream(out, table.schema) as writer:
        writer.write_table(table)
    return view.bytes(out.getvalue().to_pybytes(), content_type=ARROW)


async def serve_insert(
    view: View, settings: Settings, sink: StoreSink, payload: dict[str, Any]
) -> Response:
    table, columns = payload.get("table"), payload.get("columns")
    names = [table, *columns] if isinstance(columns, list) else [None]
    if not all(isinstance(n, str) and IDENTIFIER.fullmatch(n) for n in names):
        return view.text("table and columns must be plain identifiers", status=400)
    rows = payload.get("rows") or []
    try:
        lane = sink.writes
        await lane.call(lane.store.insert, table, decode_rows(rows), columns, payload.get("token"))
    except StoreUnavailable as exc:
        return view.text(str(exc), status=400)
    return view.json({"inserted": len(rows)})


async def serve_command(
    view: View, settings: Settings, sink: StoreSink, payload: dict[str, Any]
) -> Response:
    reason, sql = await check_sql(
        settings, sink, payload.get("sql"), None, readonly=False, write=True
    )
    if reason:
        return view.text(reason, status=403)
    try:
        result = await sink.writes.call(sink.writes.store.command, sql)
    except StoreUnavailable as exc:
        return view.text(str(exc), status=400)
    return view.json({"result": result if isinstance(result, int | str) else str(result)})


HANDLERS = {
    "/store/query/": ("StoreQuery", serve_query),
    "/store/insert/": ("StoreInsert", serve_insert),
    "/store/command/": ("StoreCommand", serve_command),
}


def register_store_views(app: faust.App, settings: Settings, sink: StoreSink) -> None:
    """/store/query/, /store/insert/ and /store/command/, each behind request_refusal; the
    token file is written anew for this worker."""
    token = create_token(settings)
    port = settings.web_port
    for path, (name, handler) in HANDLERS.items():

        async def post(view: View, request: Request, handler=handler) -> Response:
            payload = await admitted(view, request, port, token)
            if not isinstance(payload, dict):
                return payload
            return await handler(view, settings, sink, payload)

        app.page(path)(type(name, (View,), {"post": post}))
