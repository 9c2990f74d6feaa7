"""The store sink under an outage: inserts retried with backoff (never dropped), the outage
reported, and writing resumed when the store is back; the fault-injection file drives it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from streamlearn.streams.sink import StoreSink


class ListStore:
    """Keeps inserted batches in memory (a pure unit test: no ClickHouse here)."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list, str]] = []

    def insert(self, table: str, rows: list, columns: Any, token: str) -> None:
        self.batches.append((table, rows, token))


def test_insert_waits_out_an_outage_then_lands_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = tmp_path / "store-down"
    down.touch()
    store = ListStore()
    sink = StoreSink(store, max_backoff_s=0.05, fault_down_file=down)

    async def scenario() -> dict[str, Any]:
        task = asyncio.create_task(sink.insert("transactions", [[1]], ("a",), "tok-1"))
        while sink.outage_retries < 3:
            await asyncio.sleep(0.01)
        during = sink.status()
        assert not task.done() and store.batches == []  # held, not dropped, not written
        down.unlink()
        await asyncio.wait_for(task, 5)
        return during

    with caplog.at_level(logging.WARNING, logger="streamlearn.streams.sink"):
        during = asyncio.run(scenario())
    sink.close()
    assert during["store_unavailable_since"] is not None
    assert during["store_retries"] >= 3 and "Connection refused" in during["store_last_error"]
    assert store.batches == [("transactions", [[1]], "tok-1")]  # once, with its token
    after = sink.status()
    assert after["store_unavailable_since"] is None and after["store_retries"] == 0
    assert after["store_outages"] == 1 and after["store_failures"] >= 3
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("store unavailable") for m in messages)
    assert any("writing resumed" in m for m in messages)


def test_no_fault_file_means_a_plain_insert(tmp_path: Path) -> None:
    store = ListStore()
    sink = StoreSink(store, fault_down_file=tmp_path / "absent")
    asyncio.run(sink.insert("outcomes", [[2]], ("a",), "tok-2"))
    sink.close()
    assert store.batches == [("outcomes", [[2]], "tok-2")]
    assert sink.status()["store_failures"] == 0


def test_a_read_is_retried_through_an_outage(tmp_path: Path) -> None:
    """The label join's look-up waits the outage out instead of stopping the worker."""
    from streamlearn.foundation.errors import StoreUnavailable

    calls: list[int] = []

    def lookup(n: int) -> int:
        calls.append(n)
        if len(calls) < 3:
            raise StoreUnavailable("ClickHouse query failed: Connection refused")
        return n * 2

    sink = StoreSink(ListStore(), max_backoff_s=0.01)
    assert asyncio.run(sink.read(lookup, 21)) == 42
    sink.close()
    assert len(calls) == 3
    status = sink.status()
    assert status["store_outages"] == 1 and status["store_unavailable_since"] is None
