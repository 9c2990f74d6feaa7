"""Store test doubles: a Store whose inserts fail while a file exists (an outage injected into
a real worker), and an in-memory one for pure unit tests of the sink."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.foundation.store import Store

# What clickhouse-connect reports for a server that refuses connections.
UNREACHABLE = (
    "Error HTTPConnectionPool(host='clickhouse', port=8123): Max retries exceeded "
    "(Caused by NewConnectionError: [Errno 111] Connection refused)"
)


class FaultyStore(Store):
    """A real Store whose inserts fail as if ClickHouse were unreachable while `down` exists."""

    down: Path | None = None

    def _check(self, table: str) -> None:
        if self.down is not None and self.down.exists():
            raise StoreUnavailable(
                f"insert into {table} failed: {UNREACHABLE} [fault injection: {self.down}]"
            )

    def insert(self, table: str, *args: Any, **kwargs: Any) -> None:
        self._check(table)
        super().insert(table, *args, **kwargs)

    def insert_arrow(self, table: str, *args: Any, **kwargs: Any) -> None:
        self._check(table)
        super().insert_arrow(table, *args, **kwargs)


def faulty_store(down: Path) -> Any:
    """An open_store for StoreSink: every session a FaultyStore watching `down`."""

    def open_store(url: str, **kwargs: Any) -> FaultyStore:
        store = FaultyStore(url, **kwargs)
        store.down = down
        return store

    return open_store


class ListStore:
    """Keeps inserted batches in memory, failing while `down` is set (no ClickHouse at all)."""

    def __init__(self, _url: str = "", **_: Any) -> None:
        self.batches: list[tuple[str, Any, str]] = []
        self.down = False

    def insert(self, table: str, rows: Any, _columns: Any, token: str) -> None:
        if self.down:
            raise StoreUnavailable(f"insert into {table} failed: {UNREACHABLE}")
        self.batches.append((table, rows, token))

    def close(self) -> None:
        """Nothing to close."""
