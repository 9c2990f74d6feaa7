"""The bench's load and its eyes: paced producers (linger <= 1 ms), the prediction watcher,
a /status poller, and the offsets every measurement starts from."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from streamlearn.foundation.errors import BrokerUnavailable
from streamlearn.foundation.kafka import admin, confluent_config, produce, producer_config
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde
from streamlearn.schemas.serde import default_registry
from streamlearn.tools.bench.periodic import Periodic

# (key, value, transaction id): a message encoded before the run, so that the paced loop
# spends its time on the broker, not on Avro.
Message = tuple[bytes, bytes, str]
PACED_LINGER_MS = 1  # a paced event waits at most this long in the producer's queue


def high_watermarks(settings: Settings, topic: str) -> dict[int, int]:
    """partition -> the offset the next message will get."""
    consumer = Consumer(confluent_config(settings, **{"group.id": f"bench-{uuid.uuid4().hex}"}))
    try:
        meta = consumer.list_topics(topic, timeout=10)
        if topic not in meta.topics or meta.topics[topic].error is not None:
            raise BrokerUnavailable(f"bench: topic {topic} is not there")
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in sorted(meta.topics[topic].partitions)
        }
    finally:
        consumer.close()


def create_topic(settings: Settings, topic: str) -> None:
    """A topic of the bench's own (outside the contract), as many partitions as the others."""
    client = admin(settings)  # held until the futures resolve: a freed client cancels them
    futures = client.create_topics(
        [NewTopic(topic, num_partitions=settings.partitions, replication_factor=1)]
    )
    for fut in futures.values():
        try:
            fut.result(timeout=30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerUnavailable(f"bench: cannot create {topic}: {exc.args[0]}") from exc


def commit_offsets(settings: Settings, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Make `group` start at `offsets`: a Faust or Quix app then reads exactly the preload."""
    consumer = Consumer(
        confluent_config(settings, **{"group.id": group, "enable.auto.commit": False})
    )
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False
        )
    finally:
        consumer.close()


def produce_all(settings: Settings, topic: str, messages: Sequence[Message]) -> float:
    """Every message as fast as the broker takes it (a preload, a backlog); seconds taken."""
    producer = Producer(producer_config(settings, **{"linger.ms": 5, "enable.idempotence": True}))
    t0 = time.perf_counter()
    for i, (key, value, _) in enumerate(messages):
        produce(producer, topic, value, key=key)
        if i % 1000 == 999:
            producer.poll(0)
    if producer.flush(120):
        raise BrokerUnavailable(f"bench: the broker did not take every message for {topic}")
    return time.perf_counter() - t0


@dataclass
class SendLog:
    """When each message of a paced run left the producer (time.time() seconds)."""

    rate: float
    started: float = 0.0
    ids: list[str] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    behind_s: float = 0.0  # the most the loop fell behind its schedule

    @property
    def achieved_rate(self) -> float:
        span = self.sent_at[-1] - self.started if self.sent_at else 0.0
        return len(self.sent_at) / span if span > 0 else float("nan")


class PacedSender:
    """A producer made ready before a run: its first message does not pay for the
    connection, the metadata and the idempotent producer id (about a second here)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.producer = Producer(
            producer_config(settings, **{"linger.ms": PACED_LINGER_MS, "enable.idempotence": True})
        )
        self.producer.list_topics(topic, timeout=10)

    def send(
        self, messages: Sequence[Message], rate: float, stop: threading.Event | None = None
    ) -> SendLog:
        """Send at `rate` a second: every message due by now goes out at once, then sleep to
        the next one's time (bursts, not drift, when the loop wakes late)."""
        producer, topic = self.producer, self.topic
        log = SendLog(rate)
        log.started = time.time()
        t0 = time.perf_counter()
        sent, n = 0, len(messages)
        while sent < n and not (stop is not None and stop.is_set()):
            now = time.perf_counter()
            due = min(n, int((now - t0) * rate) + 1)
            log.behind_s = max(log.behind_s, now - t0 - sent / rate)
            while sent < due:
                key, value, txn_id = messages[sent]
                produce(producer, topic, value, key=key)
                log.ids.append(txn_id)
                log.sent_at.append(time.time())
                sent += 1
            producer.poll(0)
            delay = t0 + sent / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        if producer.flush(60):
            raise BrokerUnavailable(f"bench: the broker did not take every message for {topic}")
        return log


def send_paced(
    settings: Settings,
    topic: str,
    messages: Sequence[Message],
    rate: float,
    stop: threading.Event | None = None,
) -> SendLog:
    return PacedSender(settings, topic).send(messages, rate, stop)


@dataclass(slots=True)
class Arrival:
    received_at: float  # time.time() when the watcher got it
    scored_at_ms: int
    model_version: str


class PredictionWatcher:
    """Collects the predictions of the given transaction ids from the given offsets on.

    The id is read from the key (the contract keys predictions by transaction id), so
    predictions of other transactions cost no decoding; a repeat (at-least-once) keeps the
    first arrival.
    """

    def __init__(
        self,
        settings: Settings,
        expected: set[str],
        start: dict[int, int] | None = None,
        topic: str | None = None,
    ) -> None:
        topic = topic or settings.topic("predictions")
        self.expected = expected
        self.arrivals: dict[str, Arrival] = {}
        self.serde = Serde("Prediction", default_registry(settings))
        start = start if start is not None else high_watermarks(settings, topic)
        self.consumer = Consumer(
            confluent_config(
                settings,
                **{
                    "group.id": f"bench-watch-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "fetch.wait.max.ms": 5,
                },
            )
        )
        self.consumer.assign([TopicPartition(topic, p, o) for p, o in start.items()])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            # poll() returns as soon as one message is there; consume() would wait for its
            # whole count or its timeout, adding up to that to every latency measured.
            first = self.consumer.poll(0.05)
            if first is None:
                continue
            now = time.time()
            for msg in (first, *self.consumer.consume(1000, timeout=0)):
                key = msg.key()
                if msg.error() or key is None:
                    continue
                txn_id = key.decode()
                if txn_id not in self.expected or txn_id in self.arrivals:
                    continue
                p = self.serde.decode(msg.value())
                self.arrivals[txn_id] = Arrival(now, p["scored_at"], p["model_version"])

    def wait(self, seconds: float, until: Callable[[], bool] | None = None) -> int:
        """Until every expected prediction came (or `seconds`); how many are missing."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and len(self.arrivals) < len(self.expected):
            if until is not None and until():
                break
            time.sleep(0.05)
        return len(self.expected) - len(self.arrivals)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.consumer.close()


class StatusPoller(Periodic):
    """Polls the worker's /status on a thread (a dashboard's load, and the learned counter).

    Each sample is (the worker's uptime when it built the snapshot, the snapshot): /status
    is a snapshot refreshed once a second, so its own time is the one to take rates over.
    """

    def __init__(self, status: Callable[[], dict[str, Any]], interval_s: float = 1.0) -> None:
        super().__init__("bench-status", interval_s)
        self.status = status
        self.samples: list[tuple[float, dict[str, Any]]] = []
        self.errors = 0
        self.slowest_s = 0.0

    def tick(self) -> None:
        t0 = time.perf_counter()
        try:
            body = self.status()
        except OSError:
            self.errors += 1
        else:
            self.samples.append((float(body.get("uptime_s") or 0.0), body))
        self.slowest_s = max(self.slowest_s, time.perf_counter() - t0)

    def counter(self, key: str) -> list[tuple[float, int]]:
        """(snapshot time, value) of one counter, one sample per snapshot."""
        out: list[tuple[float, int]] = []
        for t, body in self.samples:
            if not out or t != out[-1][0]:
                out.append((t, int(body.get(key) or 0)))
        return out


def encode_outcomes(labels: Sequence[tuple[str, bool]], event_ms: int) -> list[Message]:
    """Outcome messages (keyed by transaction id) for scored transactions and their labels."""
    serde = Serde("Outcome")
    return [
        (
            txn_id.encode(),
            serde.encode({"transaction_id": txn_id, "is_fraud": y, "event_time": event_ms}),
            txn_id,
        )
        for txn_id, y in labels
    ]
