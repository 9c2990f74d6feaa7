"""What a replay runs in and cleans up after: its own settings (topic prefix, state dir,
embedded store, web port, the event clock), the local broker if none answers, its own worker,
and its topics once it is done. Never the production topics or store.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from streamlearn.foundation.errors import BrokerUnavailable, ConfigError, StreamlearnError
from streamlearn.foundation.kafka import admin, check_reachable, ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.tools import broker
from streamlearn.tools.processes import WorkerProcess

WORKER_LOG = "worker.log"
POLL_S = 0.1


def run_id(wall_ms: int) -> str:
    """A replay's name: its start time and a few random hex digits (topic-safe)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(wall_ms / 1000)) + "-" + uuid.uuid4().hex[:6]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated(
    settings: Settings,
    state_dir: Path,
    name: str,
    *,
    web_port: int | None = None,
    store_url: str | None = None,
) -> Settings:
    """The replay's settings: its topic prefix and state dir, an embedded store there (unless a
    store URL is given on purpose), a web port of its own, and the stream's event clock."""
    return settings.with_overrides(
        topic_prefix=f"{settings.topic_prefix}replay-{name}-",
        state_dir=state_dir,
        clickhouse_url=store_url or f"chdb://{state_dir / 'clickhouse'}",
        web_port=web_port or free_port(),
        worker_id=f"replay-{name}",
        clock="event",
        # Inference cost reaches model_usage (and the report) within seconds, not a minute.
        usage_flush_s=5.0,
        # The results read a week of scored rows per query through the worker.
        query_max_execution_s=max(settings.query_max_execution_s, 600.0),
    )


class Session:
    """`with Session(settings) as s:` a reachable broker (started here if needed, in the
    replay's state dir), the replay's topics, and its worker; all of it stopped or removed at
    the end (the topics kept with keep_topics)."""

    def __init__(self, settings: Settings, *, keep_topics: bool = False) -> None:
        self.settings = settings
        self.keep_topics = keep_topics
        self.started_broker = False
        self.worker = WorkerProcess(settings, settings.state_dir / WORKER_LOG)

    def __enter__(self) -> Session:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        self._broker()
        try:
            ensure_topics(self.settings)
            self.worker.start(timeout=120)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _broker(self) -> None:
        try:
            check_reachable(self.settings, timeout=5)
            return
        except BrokerUnavailable:
            try:
                broker.local_port(self.settings)
            except ConfigError:
                raise  # a remote cluster that does not answer: nothing to start here
        broker.up(self.settings)
        self.started_broker = True

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        if not self.keep_topics:
            with contextlib.suppress(StreamlearnError, KafkaException):
                delete_topics(self.settings)
        if self.started_broker:
            broker.down(self.settings)

    def status(self) -> dict[str, Any]:
        return self.worker.status()

    def wait_for(self, targets: dict[str, int], stall_s: float) -> dict[str, Any]:
        """Poll /status until each count reaches its target; StreamlearnError if none of them
        moves for stall_s (the worker is stuck, refuses records, or died)."""
        best: dict[str, int] = {}
        last: dict[str, Any] = {}
        moved = time.monotonic()
        while True:
            with contextlib.suppress(OSError):
                last = self.status()
                got = {k: int(last.get(k) or 0) for k in targets}
                if all(got[k] >= v for k, v in targets.items()):
                    return last
                if got != best:
                    best, moved = got, time.monotonic()
            proc = self.worker.proc
            if proc is not None and proc.poll() is not None:
                raise StreamlearnError(f"the replay's worker exited; see {self.worker.log_path}")
            if time.monotonic() - moved > stall_s:
                raise StreamlearnError(
                    f"the replay's worker stalled at {best} of {targets} for {stall_s:.0f}s "
                    f"(dead letters: {last.get('dead_letters')}); see {self.worker.log_path}"
                )
            time.sleep(POLL_S)


def delete_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Every topic under the replay's prefix (its contract topics and Faust's own)."""
    client = admin(settings)
    topics = client.list_topics(timeout=timeout).topics
    names = [t for t in topics if t.startswith(settings.topic_prefix)]
    if settings.topic_prefix and names:
        for fut in client.delete_topics(names, operation_timeout=timeout).values():
            with contextlib.suppress(KafkaException):
                fut.result(timeout=timeout)
    return names
