"""Is the worker alive, and is it ready: partitions assigned and caught up, the store writable.

`readiness` and `liveness` are pure: they judge facts read from the running app (`Facts`,
`partition_lags`) and say why in a JSON-ready body; streams/web.py serves them as /health and
/ready with 200 or 503.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faust.exceptions import ConsumerNotStarted
from faust.types import TP

if TYPE_CHECKING:
    from streamlearn.streams.app import Running
    from streamlearn.streams.parts import WorkerParts


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One assigned partition: the log's end (highwater), the next offset this worker will
    process (position), the group's committed offset; None where not known yet."""

    topic: str
    partition: int
    highwater: int | None
    position: int | None
    committed: int | None

    @property
    def lag(self) -> int | None:
        """Events on the partition this worker has not taken yet."""
        if self.highwater is None or self.position is None:
            return None
        return max(0, self.highwater - self.position)


def partition_lags(consumer: Any, topics: Iterable[str]) -> list[PartitionLag]:
    """The assigned partitions of `topics`, read from Faust's consumer without I/O.

    The highwater is what the last fetch response said; the position is the offset after the
    last batch the fast path handed to the partition's actor (streams/fastpath.py), else the
    committed offset (nothing taken since the assignment), else 0 (the group never committed).
    Empty before the consumer started.
    """
    wanted = set(topics)
    try:
        assigned = sorted(tp for tp in consumer.assignment() if tp.topic in wanted)
    except ConsumerNotStarted:
        return []
    handed_out: dict[TP, int] = getattr(consumer, "_next_offset", {})
    committed: dict[TP, int | None] = getattr(consumer, "_committed_offset", {})
    out = []
    for tp in assigned:
        try:
            highwater = consumer.highwater(tp)
        except (AssertionError, ConsumerNotStarted):  # revoked meanwhile (aiokafka asserts)
            highwater = None
        done = committed.get(tp)
        position = handed_out.get(tp, done)
        if position is None and highwater is not None:
            # The group never committed here and nothing was taken yet: all of the log is
            # ahead (from offset 0, an upper bound where retention already dropped its start).
            position = 0
        out.append(PartitionLag(tp.topic, tp.partition, highwater, position, done))
    return out


@dataclass(frozen=True, slots=True)
class Facts:
    """What readiness is judged on, read from the app at request time."""

    started: bool  # the consumer runs (the worker's start-up is over)
    stopping: bool
    rebalancing: bool
    recovering: bool  # Faust rebuilds table state from the changelog
    transactions: list[PartitionLag]  # the assigned partitions of the transactions topic
    store_down_since: float | None  # the store refuses writes since (epoch seconds)
    model_version: str  # "none" before any champion: ready all the same


def gather_facts(parts: WorkerParts, running: Running) -> Facts:
    """The facts of readiness, read from the running app (no I/O)."""
    app = running.app
    consumer = app.consumer
    champion = parts.champion.current
    return Facts(
        started=bool(consumer.started),
        stopping=bool(app.should_stop),
        rebalancing=bool(app.rebalancing),
        recovering=bool(app.in_recovery),
        transactions=partition_lags(consumer, [parts.settings.topic("transactions")]),
        store_down_since=parts.sink.down_since,
        model_version=champion.version if champion is not None else "none",
    )


def readiness(facts: Facts, max_lag: int, now: float | None = None) -> tuple[bool, dict[str, Any]]:
    """(ready, body): ready when scoring runs on assigned partitions no further behind than
    `max_lag` events in total, and the store takes writes. The body says why not."""
    now = time.time() if now is None else now
    reasons = []
    if facts.stopping:
        reasons.append("the worker is stopping")
    if not facts.started:
        reasons.append("the consumer has not started")
    if facts.rebalancing:
        reasons.append("the consumer group is rebalancing")
    if facts.recovering:
        reasons.append("table state is being recovered from the changelog")
    if facts.started and not facts.transactions:
        reasons.append("no transactions partition is assigned to this worker")
    unknown = [f"{p.topic}[{p.partition}]" for p in facts.transactions if p.lag is None]
    if unknown:
        reasons.append(f"nothing fetched yet from {', '.join(unknown)}")
    lag = sum(p.lag or 0 for p in facts.transactions)
    if lag > max_lag:
        reasons.append(f"{lag} events behind (more than {max_lag}, STREAMLEARN_READY_MAX_LAG)")
    if facts.store_down_since is not None:
        down_s = now - facts.store_down_since
        reasons.append(f"the store refuses writes for {down_s:.0f}s")
    body = {
        "ready": not reasons,
        "reasons": reasons,
        "lag": lag,
        "max_lag": max_lag,
        "partitions": {f"{p.topic}[{p.partition}]": p.lag for p in facts.transactions},
        "store": "writable" if facts.store_down_since is None else "unavailable",
        "model_version": facts.model_version,
    }
    return not reasons, body


def liveness(stopping: bool, started_at: float, now: float | None = None) -> dict[str, Any]:
    """The /health body. Alive means the event loop answered this request: a loop that hangs
    (a stretch of work that never yields) cannot answer, and the probe times out. A worker
    that is stopping is alive too: its drain is work, not a hang."""
    now = time.time() if now is None else now
    return {"alive": True, "stopping": stopping, "uptime_s": round(now - started_at, 1)}
