"""`streamlearn bench`: end-to-end throughput and latency through the local broker.

Every figure comes from one run on this machine, beside the ceilings measured in the same
run: the raw consume+decode rate (confluent-kafka + fastavro) and a bare Faust agent that
only consumes. Absolute numbers drift between runs; the ratios are what to compare.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from rich.console import Console
from rich.table import Table

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.kafka import confluent_config, ensure_topics, producer_config
from streamlearn.foundation.settings import Settings, settings_env
from streamlearn.schemas import Serde
from streamlearn.schemas.serde import default_registry
from streamlearn.tools import broker
from streamlearn.tools.bench_pending import measure
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import generate_batch

console = Console()
OUTCOME_SHARE = 0.1  # outcomes per scored transaction in the "realistic" learning run


@dataclass
class Figure:
    name: str
    events: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")


def _produce(settings: Settings, records: list[dict], paced_rate: float | None = None) -> None:
    serde = Serde("Transaction")
    producer = Producer(producer_config(settings, **{"linger.ms": 5, "enable.idempotence": True}))
    topic = settings.topic("transactions")
    start = time.perf_counter()
    for i, record in enumerate(records):
        if paced_rate:
            due = start + i / paced_rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            record = {**record, "event_time": int(time.time() * 1000)}
        while True:
            try:
                producer.produce(topic, key=record["card_id"].encode(), value=serde.encode(record))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60):
        raise StreamlearnError("bench: the broker did not take every event")


def _produce_outcomes(
    settings: Settings, outcomes: list[dict], paced_rate: float | None = None
) -> None:
    """Outcomes keyed by transaction id, at paced_rate a second (None: as fast as possible)."""
    serde = Serde("Outcome")
    producer = Producer(producer_config(settings, **{"linger.ms": 5, "enable.idempotence": True}))
    topic = settings.topic("outcomes")
    start = time.perf_counter()
    for i, outcome in enumerate(outcomes):
        if paced_rate:
            delay = start + i / paced_rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        value = serde.encode({**outcome, "event_time": int(time.time() * 1000)})
        while True:
            try:
                producer.produce(topic, key=outcome["transaction_id"].encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60):
        raise StreamlearnError("bench: the broker did not take every outcome")


def _outcomes(pairs: list[tuple[dict, bool]]) -> list[dict]:
    return [{"transaction_id": t["transaction_id"], "is_fraud": y} for t, y in pairs]


def _consumer(settings: Settings, topic: str) -> tuple[Consumer, list[TopicPartition]]:
    consumer = Consumer(
        confluent_config(
            settings,
            **{"group.id": f"bench-{uuid.uuid4().hex}", "enable.auto.commit": False},
        )
    )
    meta = consumer.list_topics(topic, timeout=10)
    parts = sorted(meta.topics[topic].partitions)
    return consumer, [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts]


def _recent(records: list[dict], now_ms: int) -> list[dict]:
    """Shift simulated event times so the newest is now (the worker refuses future times)."""
    shift = now_ms - max(r["event_time"] for r in records)
    return [{**r, "event_time": r["event_time"] + shift} for r in records]


def raw_ceiling(settings: Settings, n: int) -> Figure:
    """confluent-kafka consume(500) + fastavro decode of every event: the floor of any work."""
    consumer, tps = _consumer(settings, settings.topic("transactions"))
    consumer.assign(tps)
    serde = Serde("Transaction")
    seen = 0
    first = 0.0
    deadline = time.monotonic() + 120
    while seen < n and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=1.0):
            if msg.error():
                continue
            if seen == 0:
                first = time.perf_counter()
            serde.decode(msg.value())
            seen += 1
    elapsed = time.perf_counter() - first
    consumer.close()
    return Figure("raw consume + decode (ceiling)", seen, elapsed, "confluent-kafka + fastavro")


def faust_ceiling(settings: Settings, n: int) -> Figure:
    """A bare Faust agent that only consumes: Faust's own per-event cost."""
    env = {**os.environ, **settings_env(settings)}
    out = subprocess.run(
        [sys.executable, "-m", "streamlearn.tools.bench_faust", str(n)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    for line in out.stdout.splitlines():
        if "{" in line:  # Faust's terminal codes may precede it
            data = json.loads(line[line.index("{") :])
            return Figure("bare Faust agent, consume only", data["events"], data["seconds"])
    raise StreamlearnError(f"bench: the bare Faust agent failed: {out.stderr.strip()[-300:]}")


class PredictionWatcher:
    """Counts predictions and their end-to-end latency (receive time - event time)."""

    def __init__(self, settings: Settings) -> None:
        self.consumer, tps = _consumer(settings, settings.topic("predictions"))
        self.consumer.assign(tps)
        self.serde = Serde("Prediction", default_registry(settings))  # either framing
        self.count = 0
        self.scored_at: list[int] = []
        self.latency_ms: list[float] = []
        self.event_ms: list[int] = []
        self.versions: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            # A short timeout: consume() waits for all 500 or the timeout, which would add
            # up to the timeout to every measured latency.
            for msg in self.consumer.consume(500, timeout=0.005):
                if msg.error():
                    continue
                now = time.time() * 1000
                p = self.serde.decode(msg.value())
                self.count += 1
                self.scored_at.append(p["scored_at"])
                self.latency_ms.append(now - p["event_time"])
                self.event_ms.append(p["event_time"])
                self.versions[p["model_version"]] = self.versions.get(p["model_version"], 0) + 1

    def wait(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count < n and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.count < n:
            raise StreamlearnError(
                f"bench: {self.count} of {n} predictions arrived in {timeout:.0f}s"
            )

    def reset(self) -> None:
        self.count = 0
        self.scored_at = []
        self.latency_ms = []
        self.event_ms = []

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.consumer.close()


def _latency_run(
    settings: Settings,
    watcher: PredictionWatcher,
    worker: WorkerProcess,
    *,
    rate: float,
    seconds: float,
    seed: int,
    start_ms: int,
    outcomes: list[dict] | None = None,
    outcome_rate: float | None = None,
) -> dict:
    """Live transactions at rate/s for seconds; outcomes alongside (paced, or all at once when
    outcome_rate is None). The latency of every prediction, and what the worker learned."""
    watcher.reset()
    live = [
        t
        for t, _ in generate_batch(
            int(rate * seconds), seed=seed, start_ms=start_ms, rate_per_s=rate
        )
    ]
    before = worker.status()
    learned_at: list[tuple[float, int]] = [(time.monotonic(), before["learned"])]
    sender = None
    if outcomes:
        sender = threading.Thread(
            target=_produce_outcomes, args=(settings, outcomes, outcome_rate), daemon=True
        )
        sender.start()
    _produce(settings, live, paced_rate=rate)
    watcher.wait(len(live), timeout=seconds + 120)
    if sender is not None:
        sender.join(120)
        # Until every outcome is learned (or 60 s): the learning rate needs its end.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            learned_at.append((time.monotonic(), worker.status()["learned"]))
            if learned_at[-1][1] - before["learned"] >= len(outcomes or ()):
                break
            time.sleep(0.25)
    after = worker.status()
    learned_at.append((time.monotonic(), after["learned"]))
    lat = np.asarray(watcher.latency_ms)
    return {
        "latency": lat,
        "sent_at": np.asarray(watcher.event_ms),
        "learned": after["learned"] - before["learned"],
        "learned_at": learned_at,
        "outcomes": after["outcomes"] - before["outcomes"],
    }


def _learn_rate(learned_at: list[tuple[float, int]]) -> float:
    """Outcomes learned per second between the first and the last change of the counter."""
    changes = [(t, n) for i, (t, n) in enumerate(learned_at) if i == 0 or n != learned_at[i - 1][1]]
    if len(changes) < 2:
        return float("nan")
    (t0, n0), (t1, n1) = changes[0], changes[-1]
    return (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")


def run_bench(
    base: Settings,
    *,
    events: int,
    latency_rate: float,
    latency_s: float,
    pending_entries: tuple[int, ...] = (1_000_000, 2_000_000),
) -> dict:
    """Run every measurement, print the table, return the figures."""
    bench_dir = base.state_dir / "bench" / uuid.uuid4().hex[:8]
    settings = base.with_overrides(
        topic_prefix=f"bench-{uuid.uuid4().hex[:8]}-",
        state_dir=bench_dir,
        clickhouse_url=f"chdb://{bench_dir / 'clickhouse'}",
        worker_id="bench",
    )
    started = not broker.is_running(base)
    console.print(f"bench: broker {broker.up(base)}; {events:,} events; state in {bench_dir}")
    ensure_topics(settings)
    now = int(time.time() * 1000)
    preloaded = generate_batch(events, start_ms=now - 3_600_000)
    records = _recent([t for t, _ in preloaded], now)
    _produce(settings, records)
    figures = [raw_ceiling(settings, events), faust_ceiling(settings, events)]

    # The worker reads the same preloaded topic; its rate is taken between its first and
    # last prediction (scored_at), so start-up and rebalance are not counted.
    watcher = PredictionWatcher(settings)
    # A small pending map: outcomes arrive days late in production, long after a 500k-entry
    # map (8 minutes at 1,000 events/s) let their transaction go; the join then reads the
    # logged features from ClickHouse, and that is the cost measured here.
    worker = WorkerProcess(
        settings.with_overrides(pending_max_entries=2_000), bench_dir / "worker.log"
    )
    try:
        worker.start()
        watcher.wait(events, timeout=600)
        span = (max(watcher.scored_at) - min(watcher.scored_at)) / 1000
        figures.append(
            Figure(
                "streamlearn worker, end to end",
                events,
                span,
                "decode → features → score → predictions + ClickHouse",
            )
        )
        worker.status()

        quiet = _latency_run(
            settings, watcher, worker, rate=latency_rate, seconds=latency_s, seed=11, start_ms=now
        )
        # Outcomes at a tenth of the transaction rate (chargebacks, confirmed frauds and
        # reviewed payments; the rest mature unlabeled), for the preloaded transactions: aged
        # out of the small pending map below, so each is joined through a ClickHouse lookup,
        # as outcomes that come days later are.
        outcome_rate = latency_rate * OUTCOME_SHARE
        paced = int(outcome_rate * latency_s)
        labelled = _latency_run(
            settings,
            watcher,
            worker,
            rate=latency_rate,
            seconds=latency_s,
            seed=12,
            start_ms=now + 3_600_000,
            outcomes=_outcomes(preloaded)[:paced],
            outcome_rate=outcome_rate,
        )
        # All the other outcomes at once beside live scoring: how fast the worker learns.
        flood = _latency_run(
            settings,
            watcher,
            worker,
            rate=latency_rate,
            seconds=latency_s,
            seed=13,
            start_ms=now + 7_200_000,
            outcomes=_outcomes(preloaded)[paced:],
        )
    finally:
        worker.stop()
        watcher.close()
        if started:
            broker.down(base)
    lat, sent_at = quiet["latency"], quiet["sent_at"]
    table = Table(title="streamlearn bench (one run, this machine)")
    for col in ("measurement", "events", "seconds", "events/s", "vs raw", "note"):
        table.add_column(col)
    raw = figures[0].rate
    for f in figures:
        table.add_row(
            f.name,
            f"{f.events:,}",
            f"{f.seconds:.2f}",
            f"{f.rate:,.0f}",
            f"{f.rate / raw:.1%}",
            f.note,
        )
    console.print(table)
    p50, p99 = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
    lt = Table(
        title=f"latency at {latency_rate:,.0f} events/s for {latency_s:.0f}s "
        "(producer → prediction received)"
    )
    for col in ("events", "p50 ms", "p99 ms", "max ms"):
        lt.add_column(col)
    lt.add_row(f"{len(lat):,}", f"{p50:.1f}", f"{p99:.1f}", f"{lat.max():.1f}")
    console.print(lt)
    # Where the tail sits: p99 per 5-second slice of the run.
    t0 = sent_at.min()
    slices = []
    for start in range(0, int(latency_s), 5):
        mask = (sent_at >= t0 + start * 1000) & (sent_at < t0 + (start + 5) * 1000)
        if mask.any():
            slices.append(f"{start}-{start + 5}s: {np.percentile(lat[mask], 99):.0f}")
    console.print("p99 ms per 5 s slice: " + ", ".join(slices))
    learning = _learning_table(quiet, labelled, flood, latency_rate, latency_s, outcome_rate)
    memory = _pending_table(pending_entries)
    result = {
        "throughput": {f.name: round(f.rate, 1) for f in figures},
        "latency_ms": {"p50": p50, "p99": p99, "max": float(lat.max()), "rate": latency_rate},
        "learning": learning,
        "pending_memory": memory,
    }
    console.print_json(json.dumps(result))
    return result


def _learning_table(
    quiet: dict, labelled: dict, flood: dict, rate: float, seconds: float, outcome_rate: float
) -> dict[str, Any]:
    """Scoring latency without outcomes, with paced outcomes, and with a backlog of them."""
    paced = f"outcomes at {outcome_rate:,.0f}/s"
    runs = {"no outcomes": quiet, paced: labelled, "outcome backlog": flood}
    table = Table(
        title=f"learning beside scoring at {rate:,.0f} transactions/s, {seconds:.0f}s each "
        "(latency: producer → prediction received)"
    )
    for col in ("run", "p50 ms", "p99 ms", "outcomes stored", "learned", "learned/s"):
        table.add_column(col)
    out: dict[str, Any] = {}
    for name, run in runs.items():
        lat = run["latency"]
        p50, p99 = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
        per_s = _learn_rate(run["learned_at"])
        table.add_row(
            name,
            f"{p50:.1f}",
            f"{p99:.1f}",
            f"{run['outcomes']:,}",
            f"{run['learned']:,}",
            "-" if not np.isfinite(per_s) else f"{per_s:,.0f}",
        )
        out[name] = {
            "p50_ms": p50,
            "p99_ms": p99,
            "learned": run["learned"],
            "learned_per_s": per_s,
        }
    console.print(table)
    added = out[paced]["p99_ms"] - out["no outcomes"]["p99_ms"]
    console.print(f"p99 added by learning at {outcome_rate:,.0f} outcomes/s: {added:+.1f} ms")
    return out


def _pending_table(counts: tuple[int, ...]) -> list[dict[str, float]]:
    """RSS the label join's pending map takes (streamlearn/bench_pending.py)."""
    if not counts:
        return []
    figures = measure(list(counts))
    table = Table(title="pending map memory (RSS growth, fresh process per size)")
    for col in ("entries", "MiB", "bytes/entry"):
        table.add_column(col)
    for f in figures:
        table.add_row(f"{f['entries']:,}", f"{f['rss_mib']:,.0f}", f"{f['bytes_per_entry']:,.0f}")
    console.print(table)
    return figures
