"""What the worker reports of its learning: drift events (topic, then table) and the online
metrics per scorer (a row per scorer each minute)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from streamlearn.foundation.clock import utc
from streamlearn.foundation.deliveries import Deliveries, KafkaDeliveryError, TrackedProducer
from streamlearn.learners.drift import DriftEvent
from streamlearn.schemas import Serde
from streamlearn.streams.sink import StoreSink

log = logging.getLogger(__name__)
DRIFT_COLUMNS = ("time", "kind", "subject", "statistic", "threshold", "model_version", "details")
METRIC_COLUMNS = (
    "time",
    "worker",
    "scorer",
    "labels",
    "positives",
    "auc_rolling",
    "auc",
    "logloss",
    "ap_rolling",
    "ap",
    "p_at_k_day",
    "p_at_k_day_rolling",
    "alerts_per_day",
)


def rows_token(kind: str, worker: str, rows: Sequence[Sequence[Any]]) -> str:
    h = hashlib.blake2b(digest_size=12)
    for row in rows:
        h.update(repr(row).encode())
    return f"{kind}:{worker}:{h.hexdigest()}"


def drift_message(event: DriftEvent, version: str) -> tuple[bytes, dict[str, Any]]:
    """The drift-events key (kind:subject) and DriftEvent record of one detection."""
    record = {
        "time": event.time_ms,
        "kind": event.kind,
        "subject": event.subject,
        "statistic": float(event.statistic),
        "threshold": float(event.threshold),
        "model_version": version or "",
        "details": event.details,
    }
    return f"{event.kind}:{event.subject}".encode(), record


class DriftReporter:
    """Publishes drift events on the drift-events topic, then stores them once acked; an
    unacknowledged batch is retried at the next flush (consumers key on kind:subject+time)."""

    def __init__(self, producer: TrackedProducer, topic: str, serde: Serde, sink: StoreSink):
        self.producer, self.topic, self.serde, self.sink = producer, topic, serde, sink
        self.unsaved: list[tuple[DriftEvent, str]] = []

    async def flush(self, new: list[tuple[DriftEvent, str]]) -> int:
        self.unsaved.extend(new)
        events = list(self.unsaved)
        if not events:
            return 0
        deliveries = Deliveries(asyncio.get_running_loop())
        for event, version in events:
            key, record = drift_message(event, version)
            self.producer.send(self.topic, self.serde.encode(record), deliveries, key=key)
        deliveries.seal(len(events))
        try:
            await deliveries.done
        except KafkaDeliveryError as exc:
            log.warning("drift events not acknowledged, retried at the next flush: %s", exc)
            return 0
        rows = [
            [utc(e.time_ms), e.kind, e.subject, e.statistic, e.threshold, v, e.details]
            for e, v in events
        ]
        await self.sink.insert("drift_events", rows, DRIFT_COLUMNS, rows_token("drift", "", rows))
        del self.unsaved[: len(events)]
        return len(rows)


def metric_rows(
    snapshot: Mapping[str, Mapping[str, float]], worker: str, now: dt.datetime
) -> list[list[Any]]:
    """One streamlearn.online_metrics row per scorer of a scorecard snapshot."""
    return [
        [
            now,
            worker,
            scorer,
            int(m["labels"]),
            int(m["positives"]),
            m["auc_rolling"],
            m["auc"],
            m["logloss"],
            m["ap_rolling"],
            m["ap"],
            m["p_at_k_day"],
            m["p_at_k_day_rolling"],
            int(m["alerts_per_day"]),
        ]
        for scorer, m in snapshot.items()
    ]


async def flush_online_metrics(
    sink: StoreSink, snapshot: Mapping[str, Mapping[str, float]], worker: str
) -> int:
    """The scorecard as the learning thread last published it (streamlearn.online_metrics)."""
    rows = metric_rows(snapshot, worker, dt.datetime.now(dt.UTC))
    if rows:
        token = rows_token("metrics", worker, rows)
        await sink.insert("online_metrics", rows, METRIC_COLUMNS, token)
    return len(rows)
