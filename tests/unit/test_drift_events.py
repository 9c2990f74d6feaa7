"""Drift events go to the drift-events topic, acknowledged, before they are stored (no broker)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.foundation.settings import TOPICS, Settings
from streamlearn.learners.drift import DriftEvent
from streamlearn.schemas import Serde
from streamlearn.streams.online import OnlineLearning, flush_drift


class FakeProducer:
    """confluent-kafka's produce/poll/flush surface; `refuse` fails every delivery."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.sent: list[tuple[str, bytes, bytes]] = []
        self._callbacks: list[Any] = []

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any = None) -> None:
        self.sent.append((topic, key, value))
        self._callbacks.append(on_delivery)

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        for cb in self._callbacks:
            cb("broker refused" if self.refuse else None, None)
        self._callbacks.clear()
        return 0


class FakeSink:
    def __init__(self) -> None:
        self.inserts: list[tuple[str, list, tuple, str]] = []

    async def insert(self, table: str, rows: list, columns: tuple, token: str) -> None:
        self.inserts.append((table, rows, columns, token))


def context(producer: FakeProducer) -> SimpleNamespace:
    online = OnlineLearning("lr", FEATURE_NAMES)
    online._record(
        [
            DriftEvent(1_000, "data", "amount", 0.31, 0.2),
            DriftEvent(2_000, "concept", "lightgbm", 0.09, 0.03, "log loss up"),
        ],
        "v7",
    )
    return SimpleNamespace(
        online=online,
        producer=producer,
        sink=FakeSink(),
        settings=Settings(topic_prefix="p-"),
        drift_serde=Serde("DriftEvent"),
    )


def test_drift_events_is_a_contract_topic() -> None:
    assert "drift-events" in TOPICS and Settings(topic_prefix="x.").topic("drift-events") == (
        "x.drift-events"
    )


def test_published_keyed_by_kind_and_subject_then_stored() -> None:
    ctx = context(FakeProducer())
    assert asyncio.run(flush_drift(ctx)) == 2
    topics = {t for t, _, _ in ctx.producer.sent}
    assert topics == {"p-drift-events"}
    assert [k for _, k, _ in ctx.producer.sent] == [b"data:amount", b"concept:lightgbm"]
    first = Serde("DriftEvent").decode(ctx.producer.sent[0][2])
    assert first == {
        "time": 1_000,
        "kind": "data",
        "subject": "amount",
        "statistic": 0.31,
        "threshold": 0.2,
        "model_version": "v7",
        "details": "",
    }
    ((table, rows, _, _),) = ctx.sink.inserts
    assert table == "drift_events" and [r[2] for r in rows] == ["amount", "lightgbm"]
    assert not ctx.online.unsaved_drift
    assert asyncio.run(flush_drift(ctx)) == 0  # nothing new: nothing sent or stored


def test_unacknowledged_events_are_neither_stored_nor_dropped() -> None:
    ctx = context(FakeProducer(refuse=True))
    assert asyncio.run(flush_drift(ctx)) == 0
    assert not ctx.sink.inserts and len(ctx.online.unsaved_drift) == 2
    ctx.producer.refuse = False  # the broker is back: the next flush publishes and stores
    assert asyncio.run(flush_drift(ctx)) == 2
    assert len(ctx.sink.inserts) == 1 and not ctx.online.unsaved_drift
