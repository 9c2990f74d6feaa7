"""Drift events go to the drift-events topic, acknowledged, before they are stored (no broker)."""

from __future__ import annotations

import asyncio
from typing import Any

from streamlearn.foundation.deliveries import Deliveries
from streamlearn.foundation.settings import TOPICS, Settings
from streamlearn.learners.drift import DriftEvent
from streamlearn.schemas import Serde
from streamlearn.streams.monitoring import DriftReporter

EVENTS = [
    (DriftEvent(1_000, "data", "amount", 0.31, 0.2), "v7"),
    (DriftEvent(2_000, "concept", "lightgbm", 0.09, 0.03, "log loss up"), "v7"),
]


class FakeProducer:
    """TrackedProducer's send: Kafka acknowledges (or, with `refuse`, refuses) each message."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, value: bytes, deliveries: Deliveries, key: bytes, **_: Any) -> None:
        self.sent.append((topic, key, value))
        deliveries.report("broker refused" if self.refuse else None, None)  # type: ignore[arg-type]


class FakeSink:
    def __init__(self) -> None:
        self.inserts: list[tuple[str, list, tuple, str]] = []

    async def insert(self, table: str, rows: list, columns: tuple, token: str) -> None:
        self.inserts.append((table, rows, columns, token))


def reporter(producer: FakeProducer) -> tuple[DriftReporter, FakeSink]:
    sink = FakeSink()
    topic = Settings(topic_prefix="p-").topic("drift-events")
    return DriftReporter(producer, topic, Serde("DriftEvent"), sink), sink  # type: ignore[arg-type]


def test_drift_events_is_a_contract_topic() -> None:
    assert "drift-events" in TOPICS
    assert Settings(topic_prefix="x.").topic("drift-events") == "x.drift-events"


def test_published_keyed_by_kind_and_subject_then_stored() -> None:
    producer = FakeProducer()
    drift, sink = reporter(producer)
    assert asyncio.run(drift.flush(list(EVENTS))) == 2
    assert {t for t, _, _ in producer.sent} == {"p-drift-events"}
    assert [k for _, k, _ in producer.sent] == [b"data:amount", b"concept:lightgbm"]
    assert Serde("DriftEvent").decode(producer.sent[0][2]) == {
        "time": 1_000,
        "kind": "data",
        "subject": "amount",
        "statistic": 0.31,
        "threshold": 0.2,
        "model_version": "v7",
        "details": "",
    }
    ((table, rows, _, _),) = sink.inserts
    assert table == "drift_events" and [r[2] for r in rows] == ["amount", "lightgbm"]
    assert asyncio.run(drift.flush([])) == 0  # nothing new: nothing sent or stored


def test_unacknowledged_events_are_neither_stored_nor_dropped() -> None:
    producer = FakeProducer(refuse=True)
    drift, sink = reporter(producer)
    assert asyncio.run(drift.flush(list(EVENTS))) == 0
    assert not sink.inserts and len(drift.unsaved) == 2
    producer.refuse = False  # the broker is back: the next flush publishes and stores
    assert asyncio.run(drift.flush([])) == 2
    assert len(sink.inserts) == 1 and not drift.unsaved
