"""A paced run: live transactions at a rate, each one's latency from the moment the producer
sent it to the moment its prediction was received (the bench's one way to time a score)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamlearn.foundation.clock import now_ms
from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde
from streamlearn.tools.bench.figures import Latency, Slice, slices
from streamlearn.tools.bench.load import Message, PacedSender, PredictionWatcher, create_topic
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import Simulator

LEAD_MS = 500  # event times start this far after encoding ends: the run starts then
# A fresh producer and consumer add ~0.5 s to their first second (connections, metadata, the
# idempotent producer id, the first fetch): measured, 1 s of warm-up removes it.
WARM_UP_S = 1.0


@dataclass
class Context:
    """What every phase shares: the settings, the worker, the traffic, and what was scored."""

    settings: Settings
    worker: WorkerProcess
    sim: Simulator
    labels: dict[str, bool] = field(default_factory=dict)  # scored transaction -> is fraud
    unlabelled: deque[str] = field(default_factory=deque)  # scored, no outcome sent yet
    versions: Counter[str] = field(default_factory=Counter)  # of every timed prediction

    def scored(self, ids: list[str]) -> None:
        """Transactions the worker scored: outcomes may be sent for them, oldest first."""
        self.unlabelled.extend(ids)

    def take_labels(self, n: int) -> list[tuple[str, bool]]:
        if n > len(self.unlabelled):
            raise StreamlearnError(
                f"bench: {n:,} outcomes wanted but only {len(self.unlabelled):,} scored "
                "transactions have none yet: raise --events or lower --backlog"
            )
        return [(t, self.labels[t]) for t in (self.unlabelled.popleft() for _ in range(n))]

    def transactions(self, count: int, rate: float, start_ms: int) -> list[Message]:
        """`count` simulated payments, event times spaced 1/rate apart from start_ms."""
        serde = Serde("Transaction")
        step = 1000.0 / rate
        out: list[Message] = []
        events = self.sim.events(start_ms, count=count, rate_per_s=rate, diurnal=False)
        for i, ev in enumerate(events):
            txn = {**ev.transaction, "event_time": start_ms + int(i * step)}
            self.labels[txn["transaction_id"]] = ev.is_fraud
            out.append((txn["card_id"].encode(), serde.encode(txn), txn["transaction_id"]))
        return out


@dataclass
class PacedResult:
    rate: float
    planned_s: float
    sent: int
    received: int
    late: int  # came more than grace_s after the last event was sent, or never
    achieved_rate: float
    behind_s: float  # the most the producer fell behind its schedule
    latency: Latency  # a prediction that never came counts as infinitely late
    slices: list[Slice]
    versions: Counter[str]
    # The worker's own p50/p99 (Kafka timestamp -> scored, before the prediction is sent and
    # acked) over its last 30 s, read when the run ended: what the bench adds shows beside it.
    worker_view: dict[str, Any] = field(default_factory=dict)

    @property
    def missing(self) -> int:
        return self.sent - self.received

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate": round(self.rate, 1),
            "planned_s": self.planned_s,
            "sent": self.sent,
            "received": self.received,
            "late": self.late,
            "achieved_rate": round(self.achieved_rate, 1),
            "producer_behind_ms": round(self.behind_s * 1000, 1),
            "p50_ms": round(self.latency.p50, 2),
            "p99_ms": round(self.latency.p99, 2),
            "max_ms": round(self.latency.max, 2),
            "p99_ms_per_5s": [[s.start_s, round(s.p99_ms, 1)] for s in self.slices],
            "model_versions": dict(self.versions),
            "worker_view_ms": self.worker_view,
        }


def paced_run(
    ctx: Context,
    rate: float,
    seconds: float,
    *,
    grace_s: float,
    wait_s: float = 60.0,
    stop: threading.Event | None = None,
    on_start: Callable[[], None] | None = None,
) -> PacedResult:
    """Send rate x seconds live transactions (until `stop`), then wait up to wait_s for the
    predictions still due (a late one is timed; one that never came counts as infinitely
    late). `on_start` runs when the first event is about to go, after encoding."""
    ready_at = time.monotonic() + WARM_UP_S
    sender = PacedSender(ctx.settings, ctx.settings.topic("transactions"))
    messages = ctx.transactions(max(1, int(rate * seconds)), rate, now_ms() + LEAD_MS)
    watcher = PredictionWatcher(ctx.settings, {m[2] for m in messages})
    try:
        time.sleep(max(0.0, ready_at - time.monotonic()))
        if on_start is not None:
            on_start()
        log = sender.send(messages, rate, stop)
        watcher.expected = set(log.ids)  # a stopped run waits only for what it sent
        watcher.wait(wait_s)
        worker_view = _worker_view(ctx.worker, len(log.ids) / rate)
    finally:
        watcher.close()
    arrivals = dict(watcher.arrivals)
    due = (log.sent_at[-1] if log.sent_at else log.started) + grace_s
    lat, sent_s, versions = [], [], Counter[str]()
    late = 0
    for txn_id, at in zip(log.ids, log.sent_at, strict=True):
        got = arrivals.get(txn_id)
        if got is None:
            late += 1
            continue
        late += got.received_at > due
        lat.append((got.received_at - at) * 1000)
        sent_s.append(at - log.started)
        versions[got.model_version] += 1
    ctx.versions.update(versions)
    ctx.scored([t for t in log.ids if t in arrivals])
    latency_ms = np.asarray(lat, dtype=float)
    return PacedResult(
        rate,
        seconds,
        len(log.ids),
        len(lat),
        late,
        log.achieved_rate,
        log.behind_s,
        Latency.of(latency_ms, missing=len(log.ids) - len(lat)),
        slices(sent_s, latency_ms),
        versions,
        worker_view,
    )


def _worker_view(worker: WorkerProcess, seconds: float) -> dict[str, Any]:
    """The worker's latency over its window, if the run filled it (else earlier phases'
    events would be in it)."""
    try:
        view = worker.status().get("latency") or {}
    except OSError:
        return {}
    if seconds < float(view.get("window_s") or 0.0):
        return {}
    return {k: round(v, 1) for k, v in view.items() if isinstance(v, int | float)}


def harness_floor(settings: Settings, rate: float, seconds: float) -> Latency:
    """What the bench and the broker alone add to a latency: prediction-shaped records sent
    by the paced producer straight to a topic of their own and timed by the same watcher."""
    topic = settings.topic("bench-floor")
    create_topic(settings, topic)
    serde = Serde("Prediction")
    ready_at = time.monotonic() + WARM_UP_S
    sender = PacedSender(settings, topic)
    messages: list[Message] = []
    for i in range(max(1, int(rate * seconds))):
        txn_id = f"floor-{i:08d}"
        record = {"transaction_id": txn_id, "event_time": 0, "score": 0.0}
        value = serde.encode({**record, "model_version": "floor", "scored_at": 0})
        messages.append((txn_id.encode(), value, txn_id))
    watcher = PredictionWatcher(settings, {m[2] for m in messages}, topic=topic)
    try:
        time.sleep(max(0.0, ready_at - time.monotonic()))
        log = sender.send(messages, rate)
        watcher.wait(30)
    finally:
        watcher.close()
    lat = [
        (watcher.arrivals[t].received_at - at) * 1000
        for t, at in zip(log.ids, log.sent_at, strict=True)
        if t in watcher.arrivals
    ]
    return Latency.of(lat, missing=len(log.ids) - len(lat))
