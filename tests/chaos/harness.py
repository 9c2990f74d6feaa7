"""Fault-injection tools: a paced producer, workers with short group timeouts, the checks.

CHAOS_PROFILE=short (default, CI) keeps every scenario to tens of seconds; CHAOS_PROFILE=full
sends ten times the events and injects more faults.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.kafka import confluent_config
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import worker_store
from streamlearn.schemas import Serde
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import generate_batch
from tests.integration.kafka_helpers import consume_all, shift_to

PROFILE = os.environ.get("CHAOS_PROFILE", "short").strip().lower() or "short"
if PROFILE not in ("short", "full"):
    raise ValueError(f"CHAOS_PROFILE must be short or full, not {PROFILE!r}")
FULL = PROFILE == "full"

# Faust's defaults (60 s session timeout) would keep a killed member's partitions unassigned for
# a minute; the broker's minimum (6 s) keeps each takeover short. Faust reads these names.
FAST_GROUP_ENV = {
    "BROKER_SESSION_TIMEOUT": "6",
    "BROKER_HEARTBEAT_INTERVAL": "1",
    "BROKER_REBALANCE_TIMEOUT": "20",
}

TXN = Serde("Transaction")
PREDICTION = Serde("Prediction")


def scaled(short: int, full: int) -> int:
    return full if FULL else short


def transactions(n: int, seed: int, cards: int = 800) -> list[dict[str, Any]]:
    """n simulated transactions whose newest event time is now."""
    batch = [t for t, _ in generate_batch(n, seed=seed, cards=cards)]
    return shift_to(batch, int(time.time() * 1000) - 1000)


def worker(settings: Settings, log: Path, *, store_down: Path | None = None) -> WorkerProcess:
    """A worker process; with store_down, its store inserts fail while that file exists."""
    command = ["-m", "tests.chaos.faulty_worker", str(store_down)] if store_down else None
    return WorkerProcess(settings, log, extra_env=FAST_GROUP_ENV, command=command)


class PacedProducer(threading.Thread):
    """Sends the transactions at a steady rate (keyed by card), riding out broker outages."""

    def __init__(self, settings: Settings, txns: list[dict[str, Any]], rate_per_s: float):
        super().__init__(daemon=True, name="chaos-producer")
        self.settings = settings
        self.txns = txns
        self.rate = rate_per_s
        self.sent = 0
        self.errors: list[str] = []
        self.unflushed = -1
        self.placed: dict[str, tuple[int, int]] = {}  # transaction id -> (partition, offset)

    @property
    def progress(self) -> float:
        return self.sent / len(self.txns)

    def run(self) -> None:
        conf = {"enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 300_000}
        conf["log_level"] = 2  # broker outages are expected here: no line per refused connect
        producer = Producer(confluent_config(self.settings, **conf))
        topic = self.settings.topic("transactions")
        start = time.monotonic()
        for i, txn in enumerate(self.txns):
            ahead = start + i / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            while True:
                try:
                    producer.produce(
                        topic,
                        key=txn["card_id"].encode(),
                        value=TXN.encode(txn),
                        on_delivery=partial(self._delivered, txn["transaction_id"]),
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            self.sent = i + 1
        self.unflushed = producer.flush(300)

    def _delivered(self, txn_id: str, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))
        else:
            self.placed[txn_id] = (msg.partition(), msg.offset())

    def finish(self, timeout: float = 320) -> None:
        self.join(timeout)
        assert not self.is_alive(), "the producer did not finish"
        assert self.unflushed == 0 and not self.errors, (self.unflushed, self.errors[:3])

    def wait_progress(self, fraction: float, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.progress < fraction:
            assert time.monotonic() < deadline, f"producer stuck at {self.progress:.0%}"
            assert self.is_alive() or self.progress >= fraction, "the producer stopped"
            time.sleep(0.05)


def free_port_pair() -> int:
    """A port whose successor (the KRaft controller's) is free too, below the ephemeral range
    (32768+), so no client connection can take either between this check and the broker's bind."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        try:
            for p in (port, port + 1):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise AssertionError("no free pair of ports in 20000..32000")


def remote_distinct(settings: Settings) -> int:
    """Distinct transactions stored so far, asked of the running worker (0 if it is down)."""
    try:
        _, rows = worker_store(settings, timeout=10).query_rows(
            "SELECT uniqExact(transaction_id) FROM streamlearn.transactions"
        )
    except (StreamlearnError, OSError):
        return 0
    return int(rows[0][0])


def remote_ids(settings: Settings) -> frozenset[str]:
    """The transaction ids stored so far, asked of the running worker (empty if it is down)."""
    try:
        _, rows = worker_store(settings, timeout=30).query_rows(
            "SELECT DISTINCT transaction_id FROM streamlearn.transactions"
        )
    except (StreamlearnError, OSError):
        return frozenset()
    return frozenset(r[0] for r in rows)


def wait_stored(proc: WorkerProcess, n: int, timeout: float, stall_s: float = 25.0) -> int:
    """Wait until the worker's store holds n distinct transactions, or stops growing for
    stall_s seconds; return what it holds."""
    deadline = time.monotonic() + timeout
    got, last_change = -1, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last_change < stall_s:
        now = remote_distinct(proc.settings)
        if now >= n:
            return now
        if now != got:
            got, last_change = now, time.monotonic()
        if proc.proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"the worker exited ({proc.proc.returncode}); see {proc.log_path}")
        time.sleep(0.5)
    return got


@dataclass(frozen=True)
class StoreFigures:
    """One store's FINAL view: rows, distinct transactions, and which ones."""

    rows: int
    distinct: int
    ids: frozenset[str]

    @property
    def duplicated(self) -> int:
        return self.rows - self.distinct


def store_figures(store_url: str) -> StoreFigures:
    """Opened directly: only once no worker owns the embedded store."""
    store = Store(store_url, readonly=True)
    try:
        _, rows = store.query_rows(
            "SELECT count(), uniqExact(transaction_id) FROM streamlearn.transactions FINAL"
        )
        _, ids = store.query_rows("SELECT DISTINCT transaction_id FROM streamlearn.transactions")
    finally:
        store.close()
    return StoreFigures(int(rows[0][0]), int(rows[0][1]), frozenset(r[0] for r in ids))


def predicted(settings: Settings) -> Counter[str]:
    """How many predictions the topic carries per transaction id."""
    out: Counter[str] = Counter()
    for record in consume_all(settings, settings.topic("predictions"), timeout=120):
        out[PREDICTION.decode(record.value)["transaction_id"]] += 1
    return out
