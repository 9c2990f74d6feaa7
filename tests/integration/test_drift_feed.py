"""`retrain --watch` reads the drift-events topic: an external detector's event counts, a
worker's event seen in the table and on the topic counts once, and a malformed message is
dead-lettered with its reason (stage drift)."""

from __future__ import annotations

import time

import pytest

from streamlearn.batch_retrain.drift_feed import DriftFeed, SeenDrift, merge_drift
from streamlearn.foundation.kafka import ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde
from tests.integration.kafka_helpers import consume_all, produce, wait_until


@pytest.mark.timeout(90)
def test_the_watch_loop_sees_drift_published_by_anyone(settings: Settings) -> None:
    ensure_topics(settings)
    now = int(time.time() * 1000)
    serde = Serde("DriftEvent")
    external = {
        "time": now,
        "kind": "data",
        "subject": "amount",
        "statistic": 0.31,
        "threshold": 0.2,
        "model_version": "v-external",
        "details": "from a detector outside streamlearn",
    }
    topic = settings.topic("drift-events")
    produce(
        settings,
        topic,
        [(b"data:amount", serde.encode(external)), (b"data:junk", b"not avro at all")],
    )
    feed = DriftFeed(settings)
    try:
        events = wait_until(feed.poll, timeout=30, what="the drift event read from the topic")
    finally:
        feed.close()
    assert events == [SeenDrift(now, "data", "amount", 0.31, 0.2)]
    assert feed.invalid == 1
    letters = [r for r in consume_all(settings, settings.topic("dead-letters"))]
    assert [(r.headers["stage"], r.headers["source_topic"], r.value) for r in letters] == [
        (b"drift", topic.encode(), b"not avro at all")
    ]
    # The same event also stored by a worker counts once; the topic-only one still counts.
    stored = [SeenDrift(now, "data", "amount", 0.31, 0.2)]
    assert merge_drift(stored, events, since_ms=now - 1) == (1, ("data amount",))
    assert merge_drift([], events, since_ms=now - 1) == (1, ("data amount",))
