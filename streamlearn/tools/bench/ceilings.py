"""The ceilings the worker is judged against, each reading the same preloaded events: raw
confluent-kafka consume + fastavro decode, a bare Faust agent, and a Quix Streams app."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.kafka import confluent_config
from streamlearn.foundation.settings import Settings, settings_env
from streamlearn.schemas import Serde
from streamlearn.tools.bench.figures import NAN
from streamlearn.tools.bench.load import commit_offsets

CHILD_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Throughput:
    """One throughput row: events over the seconds from the first to the last of them."""

    key: str  # raw, faust, quix, worker
    name: str
    events: int
    seconds: float
    includes: str

    @property
    def per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else NAN

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.per_s, 1),
            "includes": self.includes,
        }


def raw_consume(settings: Settings, start: dict[int, int], n: int) -> Throughput:
    """confluent-kafka consume(500) + fastavro decode of every event: the floor of any work."""
    topic = settings.topic("transactions")
    consumer = Consumer(
        confluent_config(
            settings, **{"group.id": f"bench-raw-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
    )
    consumer.assign([TopicPartition(topic, p, o) for p, o in start.items()])
    decode = Serde("Transaction").decode
    seen, first, last = 0, 0.0, 0.0
    deadline = time.monotonic() + 120
    try:
        while seen < n and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=1.0):
                if msg.error():
                    continue
                if seen == 0:
                    first = time.perf_counter()
                decode(msg.value())
                seen += 1
            last = time.perf_counter()
    finally:
        consumer.close()
    if seen < n:
        raise StreamlearnError(f"bench: the raw consumer read {seen:,} of {n:,} events in 120 s")
    return Throughput(
        "raw", "raw consume + decode", seen, last - first, "confluent-kafka consume(500), fastavro"
    )


def bare_faust(settings: Settings, start: dict[int, int], n: int) -> Throughput:
    """A bare Faust agent iterating stream.events() with acks and nothing else."""
    app_id = f"{settings.topic_prefix}bench-faust-{uuid.uuid4().hex[:8]}"
    topic = settings.topic("transactions")
    commit_offsets(settings, app_id, topic, start)
    data = _child(settings, "faust_agent", [app_id, topic, str(n)])
    return Throughput(
        "faust",
        "bare Faust agent, consume only",
        data["events"],
        data["seconds"],
        "Faust's per-event machinery (stream, acks, commits); no decode, no work",
    )


def quix_available() -> bool:
    return importlib.util.find_spec("quixstreams") is not None


def quix_streams(settings: Settings, start: dict[int, int], n: int) -> Throughput | None:
    """A Quix Streams app (consume -> decode -> encode -> produce), if quixstreams is here."""
    if not quix_available():
        return None
    group = f"{settings.topic_prefix}bench-quix-{uuid.uuid4().hex[:8]}"
    topic = settings.topic("transactions")
    commit_offsets(settings, group, topic, start)
    data = _child(settings, "quix_app", [group, topic, settings.topic("bench-quix-out"), str(n)])
    return Throughput(
        "quix",
        "Quix Streams app, decode + produce",
        data["events"],
        data["seconds"],
        "per event: consume, fastavro decode + encode, produce (quixstreams)",
    )


def _child(settings: Settings, module: str, args: list[str]) -> dict[str, Any]:
    """Run a ceiling in its own interpreter (its own GIL); its last JSON line is the figure."""
    env = {**os.environ, **settings_env(settings)}
    try:
        out = subprocess.run(
            [sys.executable, "-m", f"streamlearn.tools.bench.{module}", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StreamlearnError(
            f"bench: {module} did not finish within {CHILD_TIMEOUT_S:.0f}s"
        ) from exc
    for line in reversed(out.stdout.splitlines()):
        if "{" in line:  # Faust's terminal codes may precede it
            return dict(json.loads(line[line.index("{") :]))
    tail = (out.stderr.strip() or out.stdout.strip())[-300:].replace("\n", " | ")
    raise StreamlearnError(f"bench: {module} failed (exit {out.returncode}): {tail}")
