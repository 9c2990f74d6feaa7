"""Online learning on its own thread: the scoring path hands work over and never waits.

The learning thread owns the LearnerSet. The event loop enqueues scored batches (`observe`),
joined outcomes (`learn`) and checkpoint requests, in order; the thread applies them and
publishes what the loop reads: a fresh `ScoringSnapshot` every `snapshot_s` seconds or
`snapshot_labels` labels, a status dict, drift events, and which outcome offsets a written
checkpoint covers. A checkpoint is taken between two commands, so it holds exactly the
learning of every command enqueued before its request (and the loop-side parked outcomes the
request carries): the offsets it covers were all learned by the learners it saves.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamlearn.learners import checkpoint
from streamlearn.learners.drift import DriftEvent
from streamlearn.learners.learner_set import LEARNED, LearnerSet, ScoredBatch, ScoringSnapshot
from streamlearn.streams.label_join import Example
from streamlearn.streams.merchant_risk import MerchantRisk

log = logging.getLogger(__name__)
CHECKPOINT_LEARNED_IDS = 200_000  # learned ids a checkpoint carries (repeats after a restart)
BACKLOG_MAX = 20_000  # labels enqueued and not learned before the outcomes agent waits


@dataclass(slots=True)
class CheckpointRequest:
    """What the loop side adds to a checkpoint, as it stood when the request was made."""

    covered: dict[int, int]  # outcome partition -> last offset whose work is enqueued
    parked: list[tuple[str, Any]]
    counters: dict[str, int]
    unlearned: list[list[Any]]


@dataclass
class Published:
    """What the learning thread publishes for the loop (each read is one reference)."""

    status: dict[str, Any] = field(default_factory=dict)
    drift: list[tuple[DriftEvent, str]] = field(default_factory=list)
    saved_covered: dict[int, int] = field(default_factory=dict)
    checkpoints: int = 0
    checkpoint_s: float = 0.0
    observations_skipped: int = 0


class LearningThread:
    """Owns a LearnerSet on one thread; every method here is called from the event loop."""

    def __init__(
        self,
        learners: LearnerSet,
        merchant_risk: MerchantRisk,
        *,
        checkpoint_path: Path | None,
        key: bytes,
        snapshot_s: float = 1.0,
        snapshot_labels: int = 200,
        status_s: float = 2.0,
    ) -> None:
        self.learners = learners
        self.merchant_risk = merchant_risk
        self.checkpoint_path = checkpoint_path
        self.key = key
        self.snapshot_s = snapshot_s
        self.snapshot_labels = snapshot_labels
        self.status_s = status_s
        self.snapshot: ScoringSnapshot = learners.snapshot()
        self.lr_name = learners.lr_name
        self.published = Published()
        self.backlog = 0  # labels enqueued, not yet learned
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._room = asyncio.Event()
        self._room.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_saved: Callable[[dict[int, int] | None], Any] | None = None
        self._thread: threading.Thread | None = None
        self.failed: BaseException | None = None

    # -- the loop's side ------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop, on_saved: Callable[..., Any]) -> None:
        self._loop, self._on_saved = loop, on_saved
        self._thread = threading.Thread(target=self._run, name="learning", daemon=True)
        self._thread.start()

    def observe(self, batch: ScoredBatch) -> None:
        """A scored batch, for unsupervised learning and drift (skipped if learning lags far
        behind: observing is sampling, a skipped batch loses no label)."""
        if self.backlog > BACKLOG_MAX:
            self.published.observations_skipped += 1
            return
        self._queue.put(("observe", batch))

    def learn_nowait(self, examples: list[Example]) -> None:
        with self._lock:
            self.backlog += len(examples)
        self._queue.put(("learn", examples))

    async def learn(self, examples: list[Example]) -> None:
        """Enqueue outcomes to learn; waits while the thread is BACKLOG_MAX labels behind."""
        while self.backlog > BACKLOG_MAX:
            self._room.clear()
            await self._room.wait()
        self.learn_nowait(examples)

    def request_checkpoint(self, request: CheckpointRequest) -> None:
        self._queue.put(("checkpoint", request))

    def take_drift(self) -> list[tuple[DriftEvent, str]]:
        with self._lock:
            events, self.published.drift = self.published.drift, []
        return events

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is enqueued (a final checkpoint request included), then stop."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(("stop", None))
            self._thread.join(timeout)

    # -- the thread's side ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # a bug: the worker must stop, not score on stale learners
            self.failed = exc
            log.critical("learning failed: %r", exc, exc_info=exc)
            if self._loop is not None and self._on_saved is not None:
                self._loop.call_soon_threadsafe(self._on_saved, None)

    def _serve(self) -> None:
        labels_since = 0
        snap_at = status_at = 0.0
        while True:
            try:
                kind, payload = self._queue.get(timeout=0.2)
            except queue.Empty:
                kind, payload = "", None
            if kind == "stop":
                return
            if kind == "observe":
                self.learners.observe(payload)
            elif kind == "learn":
                labels_since += self._learn(payload)
            elif kind == "checkpoint":
                self._checkpoint(payload)
            now = time.monotonic()
            if labels_since >= self.snapshot_labels or (labels_since and now - snap_at > 1.0):
                self.snapshot, labels_since, snap_at = self.learners.snapshot(), 0, now
            elif now - snap_at > self.snapshot_s:
                self.snapshot, snap_at = self.learners.snapshot(), now
            # Also at once when the drift reference follows a new champion.
            moved = self.published.status.get("drift_reference") != self.learners.drift_reference
            if now - status_at > self.status_s or (kind == "observe" and moved):
                self.published.status, status_at = self.learners.status(), now
            self._publish_drift()

    def _learn(self, examples: list[Example]) -> int:
        learned = 0
        learn, add = self.learners.learn, self.merchant_risk.add
        now_ms = int(time.time() * 1000)
        for e in examples:
            if learn(e.txn_id, e.features, e.scores, e.is_fraud, now_ms, e.event_ms) == LEARNED:
                add(e.merchant_id, e.outcome_ms, e.is_fraud)
                learned += 1
        with self._lock:
            self.backlog -= len(examples)
            room = self.backlog <= BACKLOG_MAX // 2
        if room and self._loop is not None:
            self._loop.call_soon_threadsafe(self._room.set)
        return learned

    def _publish_drift(self) -> None:
        events = self.learners.take_drift()
        if events:
            with self._lock:
                self.published.drift.extend(events)

    def _checkpoint(self, request: CheckpointRequest) -> None:
        if self.checkpoint_path is None or not request.covered:
            return
        t0 = time.perf_counter()
        learned = self.learners.learned.newest(CHECKPOINT_LEARNED_IDS)
        state = {
            **self.learners.state(),
            "learned_ids": checkpoint.pack_ids([txn_id for txn_id, _ in learned]),
            "learned_labels": bytes(bool(label) for _, label in learned),
            "parked": request.parked,
            "loop_counters": request.counters,
            "unlearned": request.unlearned,
        }
        checkpoint.save(self.checkpoint_path, state, request.covered, self.key)
        self.published.checkpoints += 1
        self.published.checkpoint_s = time.perf_counter() - t0
        self.published.saved_covered = dict(request.covered)
        if self._loop is not None and self._on_saved is not None:
            self._loop.call_soon_threadsafe(self._on_saved, dict(request.covered))


def restore(
    path: Path, key: bytes, learners: LearnerSet
) -> tuple[dict[str, Any], dict[int, int]] | None:
    """Load a checkpoint into `learners`; (the loop-side parts, covered offsets) or None."""
    if not path.exists():
        return None
    try:
        state, offsets = checkpoint.load(path, key)
    except checkpoint.CheckpointRejected as exc:
        log.warning("checkpoint refused: %s", exc)
        return None
    ids = checkpoint.unpack_ids(state["learned_ids"]) if "learned_ids" in state else []
    learned = list(zip(ids, (bool(b) for b in state.get("learned_labels", b"")), strict=True))
    if not learners.restore(state, learned):
        return None
    return state, offsets
