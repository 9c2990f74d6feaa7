"""The store sink under an outage: inserts retried with backoff (never dropped), the outage
reported, and writing resumed when the store is back."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.streams.sink import StoreSink
from tests.store_faults import ListStore


def test_insert_waits_out_an_outage_then_lands_once(caplog: pytest.LogCaptureFixture) -> None:
    sink = StoreSink("mem://", max_backoff_s=0.05, open_store=ListStore)
    store = sink.writes.store
    store.down = True

    async def scenario() -> dict[str, Any]:
        task = asyncio.create_task(sink.insert("transactions", [[1]], ("a",), "tok-1"))
        while sink.outage_retries < 3:
            await asyncio.sleep(0.01)
        during = sink.status()
        assert not task.done() and store.batches == []  # held, not dropped, not written
        store.down = False
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


def test_a_read_is_retried_through_an_outage() -> None:
    """The label join's look-up waits the outage out instead of stopping the worker."""
    calls: list[int] = []

    def lookup(n: int) -> int:
        calls.append(n)
        if len(calls) < 3:
            raise StoreUnavailable("ClickHouse query failed: Connection refused")
        return n * 2

    sink = StoreSink("mem://", max_backoff_s=0.01, open_store=ListStore)
    assert asyncio.run(sink.read(lookup, 21)) == 42
    sink.close()
    assert len(calls) == 3
    status = sink.status()
    assert status["store_outages"] == 1 and status["store_unavailable_since"] is None


def test_reads_writes_and_analysts_use_separate_sessions() -> None:
    opened: list[dict[str, Any]] = []

    def open_store(url: str, **kwargs: Any) -> ListStore:
        opened.append(kwargs)
        return ListStore(url)

    sink = StoreSink("mem://", open_store=open_store)
    sessions = {id(sink.writes.store), id(sink.reads.store), id(sink.analyst.store)}
    sink.close()
    assert len(sessions) == 3 and opened[:2] == [{}, {}] and opened[2]["readonly"] == 2
    assert opened[2]["session"]["max_threads"] == 1
