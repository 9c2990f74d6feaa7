"""ClickHouse through clickhouse-connect: the one place that opens a store client.

`chdb://PATH` opens the embedded engine (one process at a time), `http(s)://` a server; the
same statements serve both. Analysts' tables are ReplacingMergeTree keyed by the event's
identity, and every batch insert carries a deduplication token, so a retried or replayed
batch never shows twice in the views analysts query.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.foundation.store.tables import DATABASE, DDL, KEYED, KeyedTable
from streamlearn.foundation.store.urls import redact_url

log = logging.getLogger(__name__)


class Store:
    """A thread-safe handle on one ClickHouse session (chdb) or client (server).

    A read-only store is read-only for good: on chdb its session is put in readonly=1 once
    (writes, settings changes and table functions refused), never per query: clickhouse-connect
    applies per-query settings on chdb as `SET` and a later `SET readonly=DEFAULT`, which
    ClickHouse refuses in read-only mode, so a per-query readonly=1 left the session read-only
    and made every later insert on it fail. Reads and writes of a worker use separate Store
    objects (separate sessions); `session` settings (limits) are set once when it opens.
    """

    def __init__(
        self, url: str, *, readonly: int = 0, session: dict[str, Any] | None = None
    ) -> None:
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
        self.session = dict(session or {})
        if self.embedded:
            # Session settings first: once read-only, the session cannot change them.
            for name, value in self.session.items():
                self.command(f"SET {name} = {int(value)}")
            if readonly:
                self.command(f"SET readonly = {int(readonly)}")

    @contextlib.contextmanager
    def _guarded(self, what: str) -> Iterator[None]:
        """One call at a time on the client; any failure of it is StoreUnavailable, one line."""
        with self._lock:
            try:
                yield
            except Exception as exc:
                raise StoreUnavailable(f"{what} failed: {_one_line(exc)}") from exc

    def _query_settings(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        """Per-query settings. On chdb a read-only session takes none (it is read-only for good
        and its limits were set when it opened); on a server, readonly=1 and the session's
        limits go with each query as URL parameters, never as a session SET."""
        if self.embedded:
            return None if self.readonly else settings or None
        settings = {**settings, **self.session}
        if self.readonly:
            settings["readonly"] = int(self.readonly)
        return settings or None

    def migrate(self) -> None:
        """Create the database, tables and views if missing (idempotent); rebuild a keyed
        table whose key predates the current one."""
        self.command(DDL[0])
        for table in KEYED.values():
            self._rekey(table)
        for statement in DDL[1:]:
            self.command(statement)

    def _rekey(self, table: KeyedTable) -> None:
        _, rows = self.query_rows(
            "SELECT sorting_key FROM system.tables "
            "WHERE database = {db:String} AND name = {t:String}",
            {"db": DATABASE, "t": table.name},
        )
        if not rows or rows[0][0] == table.order_by:
            return
        log.warning(
            "rebuilding %s.%s under the key (%s) (was (%s)): one row per transaction",
            DATABASE,
            table.name,
            table.order_by,
            rows[0][0],
        )
        new = f"{table.name}_rekeyed"
        columns = ", ".join(c.name for c in table.columns)
        self.command(f"DROP TABLE IF EXISTS {DATABASE}.{new}")
        self.command(table.ddl(new))
        self.command(
            f"INSERT INTO {DATABASE}.{new} ({columns}) SELECT {columns} "
            f"FROM {DATABASE}.{table.name} FINAL"
        )
        self.command(f"EXCHANGE TABLES {DATABASE}.{new} AND {DATABASE}.{table.name}")
        self.command(f"DROP TABLE {DATABASE}.{new}")

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> Any:
        with self._guarded("ClickHouse command"):
            return self.client.command(sql, settings=settings)

    def query_df(self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any):
        with self._guarded("ClickHouse query"):
            return self.client.query_df(
                sql, parameters=parameters, settings=self._query_settings(settings)
            )

    def query_rows(
        self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any
    ) -> tuple[list[str], list[tuple]]:
        with self._guarded("ClickHouse query"):
            res = self.client.query(
                sql, parameters=parameters, settings=self._query_settings(settings)
            )
        return list(res.column_names), [tuple(r) for r in res.result_rows]

    def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any):
        with self._guarded("ClickHouse query"):
            return self.client.query_arrow(
                sql, parameters=parameters, settings=self._query_settings(settings)
            )

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
        with self._guarded(f"insert into {table}"):
            self.client.insert(
                f"{DATABASE}.{table}", rows, column_names=list(columns), settings=settings
            )

    def insert_arrow(self, table: str, data: Any, token: str | None = None) -> None:
        """Insert an Arrow table (columnar: no per-row Python encoding, no DESCRIBE first)."""
        if data.num_rows == 0:
            return
        settings = {"insert_deduplication_token": token} if token else None
        with self._guarded(f"insert into {table}"):
            self.client.insert_arrow(f"{DATABASE}.{table}", data, settings=settings)

    def close(self) -> None:
        # Closing a broken client has nothing left to report.
        with self._lock, contextlib.suppress(Exception):
            self.client.close()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
