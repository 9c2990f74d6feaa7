"""The worker's online learning: learners, blend, drift monitors, metrics rows, checkpoints.

Scoring calls `score()` once per batch; learning calls `learn()` once per labeled outcome.
Data-drift reference bins come from the served champion release (`reference_bins`: its
training rows' quantile bins per feature) and follow it through hot swaps, rollbacks and
promotions; a release without them (an older schema), or no champion, falls back to the first
REFERENCE_ROWS feature vectors this worker scored (the traffic it started on).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamlearn.learners import checkpoint
from streamlearn.learners.blend import BLEND, Blend
from streamlearn.learners.drift import (
    ConceptDrift,
    DataDrift,
    DriftEvent,
    ReferenceBins,
    ScoreDrift,
    bins_from_record,
    reference_bins,
)
from streamlearn.learners.metrics import Scorecard
from streamlearn.learners.registry import Learner, build_learners
from streamlearn.streams.pending import BoundedMap, Parked

log = logging.getLogger(__name__)
CHAMPION = "lightgbm"
REFERENCE_ROWS = 5000
FIRST_EVENTS = f"first {REFERENCE_ROWS} events"  # the fallback reference, as /status names it
# Calendar features are not watched for data drift: a window of 5,000 events spans less than
# their period (a day at ~0.06 events/s, a week), so against any reference they say what time
# it is, not that traffic changed (day_of_week: PSI 6.1 in a concept-drift test run).
UNWATCHED = ("hour_of_day", "day_of_week")
CHECKPOINT_LEARNED_IDS = 200_000  # learned ids a checkpoint carries (repeats after a restart)
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


class OnlineLearning:
    def __init__(
        self, spec: str, feature_names: Sequence[str], *, psi_threshold: float = 0.2
    ) -> None:
        self.feature_names = tuple(feature_names)
        self.psi_threshold = psi_threshold
        self.learners: list[Learner] = build_learners(spec, self.feature_names)
        self.blend = Blend([CHAMPION, *(m.name for m in self.learners)], lead=CHAMPION)
        self.data_drift: DataDrift | None = None
        self.drift_reference = ""  # what data drift is measured against, for /status
        self._first_events: dict[str, ReferenceBins] | None = None  # the fallback reference
        self._reference_rows: list[np.ndarray] = []
        self.score_drift = ScoreDrift()
        self.concept_drift = ConceptDrift(CHAMPION)
        self.served_source = ""
        self.unsaved_drift: list[tuple[DriftEvent, str]] = []
        self.recent_drift: deque[dict[str, Any]] = deque(maxlen=100)
        self.covered: dict[int, int] = {}  # outcome partition -> last offset learned
        self.skipped_outcomes = 0  # at or below a restored checkpoint's offsets
        self.saved_covered: dict[int, int] = {}  # what the checkpoint on disk covers
        self.restored_counters: dict[str, int] = {}  # learning counters when restored
        self.checkpoint_path: Path | None = None
        self.key = b""
        self.restored = False

    @property
    def lr(self) -> Learner:
        return self.learners[0]

    # -- scoring -------------------------------------------------------------------------
    def score(
        self,
        matrix: np.ndarray,
        lgbm: np.ndarray | None,
        time_ms: int,
        version: str,
        release: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every component score and the served one; learns hst and watches drift."""
        columns: dict[str, np.ndarray] = {m.name: m.score_batch(matrix) for m in self.learners}
        if lgbm is not None:
            columns[CHAMPION] = lgbm
        columns[BLEND] = self.blend.score_batch(columns, len(matrix))
        if self.blend.ready:
            source = BLEND
        elif lgbm is not None:
            source = CHAMPION
        else:
            source = self.lr.name
        served = columns[source]
        for m in self.learners:
            m.learn_unlabeled(matrix)
        if source != self.served_source:
            self.served_source = source
            self.score_drift.reset()  # a new source is not a drift of the served score
        self._record(self.score_drift.update(served, time_ms), version)
        self._watch_data(matrix, time_ms, version, release)
        return columns, served

    def _watch_data(
        self, matrix: np.ndarray, time_ms: int, version: str, release: Mapping[str, Any] | None
    ) -> None:
        carried = (release or {}).get("reference_bins")
        if carried:
            label = f"model {(release or {}).get('version', version)}"
            if label != self.drift_reference:
                # A new champion: the data it learned from is what traffic is compared with.
                self._use_reference(bins_from_record(carried), label)
        elif self._first_events is not None:
            if self.drift_reference != FIRST_EVENTS:
                # Back to a champion without bins (an older release), or none.
                self._use_reference(self._first_events, FIRST_EVENTS)
        else:
            self.data_drift = None  # nothing to compare with until the first events are in
            self.drift_reference = f"{FIRST_EVENTS} (collecting)"
            self._reference_rows.append(np.array(matrix))
            if sum(len(r) for r in self._reference_rows) < REFERENCE_ROWS:
                return
            rows = np.vstack(self._reference_rows)
            self._reference_rows = []
            self._first_events = reference_bins(rows, self.feature_names)
            self._use_reference(self._first_events, FIRST_EVENTS)
            return
        if self.data_drift is not None:
            self._record(self.data_drift.update(matrix, time_ms), version)

    def _use_reference(self, bins: Mapping[str, ReferenceBins], label: str) -> None:
        """Measure data drift against `bins` from now on (a fresh window of scored events)."""
        log.info("data drift reference: %s", label)
        self.drift_reference = label
        watched = {name: b for name, b in bins.items() if name not in UNWATCHED}
        self.data_drift = DataDrift(self.feature_names, watched, threshold=self.psi_threshold)

    # -- learning ------------------------------------------------------------------------
    def learn(
        self, features: Sequence[float], scores: Mapping[str, float], is_fraud: bool, time_ms: int
    ) -> None:
        for m in self.learners:
            m.learn(features, is_fraud)
        self.blend.learn(scores, is_fraud)
        champion = scores.get(CHAMPION)
        if champion is not None:
            self._record(self.concept_drift.update(champion, is_fraud, time_ms), "")

    def covers(self, partition: int, offset: int) -> bool:
        """Already learned before the restored checkpoint was written."""
        return offset <= self.covered.get(partition, -1)

    def mark_learned(self, partition: int, offset: int) -> None:
        if offset > self.covered.get(partition, -1):
            self.covered[partition] = offset

    def status(self) -> dict[str, Any]:
        """The /status fields of online learning."""
        return {
            "learners": [m.name for m in self.learners],
            "served_by": self.served_source,
            "blend": {
                "ready": self.blend.ready,
                "labels": self.blend.labels,
                "weights": self.blend.weights_by_component(),
            },
            "drift_events": list(self.recent_drift),
            "concept_drift": {
                "subject": self.concept_drift.subject,
                "labels": self.concept_drift.labels,
                "detections": list(getattr(self.concept_drift, "detections", [])),
            },
            "drift_psi": dict(self.data_drift.last_psi) if self.data_drift else {},
            "drift_reference": self.drift_reference,
            "checkpoint": {
                "restored": self.restored,
                "restored_counters": self.restored_counters,
                "covered_offsets": {str(p): o for p, o in self.covered.items()},
                "saved_offsets": {str(p): o for p, o in self.saved_covered.items()},
                "skipped_outcomes": self.skipped_outcomes,
                "learned_by_learner": {
                    m.name: getattr(m, "learned", getattr(m, "seen", None)) for m in self.learners
                },
            },
        }

    # -- drift events --------------------------------------------------------------------
    def _record(self, events: list[DriftEvent], version: str) -> None:
        for e in events:
            log.warning("drift: %s %s %.4f > %.4f", e.kind, e.subject, e.statistic, e.threshold)
            self.unsaved_drift.append((e, version))
            self.recent_drift.append(
                {
                    "time_ms": e.time_ms,
                    "kind": e.kind,
                    "subject": e.subject,
                    "statistic": e.statistic,
                    "threshold": e.threshold,
                    "details": e.details,
                }
            )

    def drift_rows(self) -> list[list[Any]]:
        return [
            [_utc(e.time_ms), e.kind, e.subject, e.statistic, e.threshold, v, e.details]
            for e, v in self.unsaved_drift
        ]

    # -- checkpoints ---------------------------------------------------------------------
    def state(self, scorecard: Scorecard, early: Any) -> dict[str, Any]:
        return {
            "feature_names": self.feature_names,
            "learners": self.learners,
            "blend": self.blend,
            "concept_drift": self.concept_drift,
            "scorecard": scorecard,
            "early": early,
        }

    def restore(self, state: Mapping[str, Any], offsets: Mapping[int, int]) -> bool:
        """Take the checkpoint's learners if they are the configured ones (same features)."""
        names = [m.name for m in state["learners"]]
        if tuple(state["feature_names"]) != self.feature_names or names != [
            m.name for m in self.learners
        ]:
            log.warning("checkpoint learners %s differ from the configured ones: ignored", names)
            return False
        self.learners = list(state["learners"])
        self.blend = state["blend"]
        self.concept_drift = state["concept_drift"]
        self.covered = dict(offsets)
        self.restored = True
        return True


def metric_rows(scorecard: Scorecard, worker: str, now: dt.datetime) -> list[list[Any]]:
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
        for scorer, m in scorecard.snapshot().items()
    ]


def rows_token(kind: str, worker: str, rows: list[list[Any]]) -> str:
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


async def publish_drift(ctx: Any, events: Sequence[tuple[DriftEvent, str]]) -> bool:
    """Publish on the drift-events topic with the worker's producer; True once all are acked."""
    topic = ctx.settings.topic("drift-events")
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        # Per message: a refused drift event must not be taken for a refused prediction.
        if err is not None:
            errors.append(str(err))

    for event, version in events:
        key, record = drift_message(event, version)
        value = ctx.drift_serde.encode(record)
        while True:
            try:
                ctx.producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                ctx.producer.poll(0.05)
    remaining = await asyncio.get_running_loop().run_in_executor(None, ctx.producer.flush, 30)
    if remaining or errors:
        log.warning("drift events not acknowledged (%d pending): %s", remaining, errors[:3])
        return False
    return True


async def flush_drift(ctx: Any) -> int:
    """Publish the drift events detected since the last flush on drift-events and, once Kafka
    acknowledged them, store them in streamlearn.drift_events; unacked ones wait for the next
    flush (a retry may publish one twice: consumers key on kind:subject and time)."""
    online: OnlineLearning = ctx.online
    events = list(online.unsaved_drift)
    if not events:
        return 0
    if not await publish_drift(ctx, events):
        return 0
    rows = online.drift_rows()[: len(events)]
    await ctx.sink.insert("drift_events", rows, DRIFT_COLUMNS, rows_token("drift", "", rows))
    del online.unsaved_drift[: len(events)]
    return len(rows)


async def flush_online_metrics(ctx: Any, worker: str) -> int:
    """One row per scorer: the Scorecard as it stands now (streamlearn.online_metrics)."""
    rows = metric_rows(ctx.scorecard, worker, dt.datetime.now(dt.UTC))
    if rows:
        token = rows_token("metrics", worker, rows)
        await ctx.sink.insert("online_metrics", rows, METRIC_COLUMNS, token)
    return len(rows)


def checkpoint_state(ctx: Any) -> dict[str, Any]:
    """Everything the learners' lineage is made of: the models, what they learned (ids and
    counters, so a repeat after a restart is still a repeat), parked and unlearned outcomes."""
    state = ctx.online.state(ctx.scorecard, ctx.early)
    state["learned_ids"] = _pack_learned(ctx.learned)
    state["counters"] = ctx.stats.learning_counters()
    state["unlearned"] = list(ctx.unlearned)
    return state


def save_checkpoint_sync(ctx: Any) -> int:
    online: OnlineLearning = ctx.online
    if online.checkpoint_path is None or not online.covered:
        return 0
    covered = dict(online.covered)
    written = checkpoint.save(online.checkpoint_path, checkpoint_state(ctx), covered, online.key)
    online.saved_covered = covered
    return written


async def save_checkpoint_now(ctx: Any) -> int:
    """Pickle on the loop (state is consistent between batches), sign and write in a thread.

    Afterwards `online.saved_covered` holds the outcome offsets the file on disk covers: the
    outcomes agent's events up to there may be acked (streams/outcome_acks.py).
    """
    online: OnlineLearning = ctx.online
    if online.checkpoint_path is None or not online.covered:
        return 0
    covered = dict(online.covered)
    data = checkpoint.dumps(checkpoint_state(ctx), covered, online.key)
    written = await asyncio.to_thread(checkpoint.write_bytes, online.checkpoint_path, data)
    online.saved_covered = covered
    return written


def start_checkpoints(ctx: Any, state_dir: Path, worker_id: str, key: bytes | None) -> bool:
    """Where this worker checkpoints, with which key (STREAMLEARN_CHECKPOINT_KEY, else the key
    file); restore the last checkpoint if it verifies."""
    online: OnlineLearning = ctx.online
    online.key = checkpoint.checkpoint_key(state_dir, key)
    online.checkpoint_path = checkpoint.checkpoint_path(state_dir, worker_id)
    return load_checkpoint(online, ctx, online.checkpoint_path, online.key)


def load_checkpoint(online: OnlineLearning, ctx: Any, path: Path, key: bytes) -> bool:
    """Restore learners, blend, scorecard and parked outcomes if the file verifies."""
    if not path.exists():
        return False
    try:
        state, offsets = checkpoint.load(path, key)
    except checkpoint.CheckpointRejected as exc:
        log.warning("checkpoint refused: %s", exc)
        return False
    if not online.restore(state, offsets):
        return False
    ctx.scorecard = state["scorecard"]
    ctx.early = _parked(state["early"])
    ctx.learner = online.lr
    if "learned_ids" in state:  # checkpoints written before these were kept lack them
        ctx.learned = _unpack_learned(state["learned_ids"], ctx.learned.max_entries)
        ctx.stats.restore_learning_counters(state["counters"])
        ctx.unlearned = list(state["unlearned"])
    online.restored_counters = ctx.stats.learning_counters()
    online.saved_covered = dict(offsets)
    return True


def _pack_learned(learned: Any) -> tuple[bytes, bytes]:
    """The newest CHECKPOINT_LEARNED_IDS learned ids packed (length-prefixed), their labels.

    Pickled on the event loop: a million separate strings would hold it for most of a second
    (measured ~0.7 s), these take tens of milliseconds. Older ids are not carried over a restart.
    """
    items = learned.newest(CHECKPOINT_LEARNED_IDS)
    return checkpoint.pack_ids([k for k, _ in items]), bytes(bool(v) for _, v in items)


def _unpack_learned(packed: tuple[bytes | str, bytes], max_entries: int) -> Any:
    ids, labels = packed
    # Checkpoints written before the length-prefixed encoding joined the ids with newlines.
    names = checkpoint.unpack_ids(ids) if isinstance(ids, bytes) else ids.split("\n") if ids else []
    learned: BoundedMap[bool] = BoundedMap(max_entries)
    for txn_id, label in zip(names, labels, strict=True):
        learned.put(txn_id, bool(label))
    return learned


def _parked(early: Any) -> Any:
    """Older checkpoints parked a bare label per transaction: give it an unknown origin."""
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    for txn_id, value in early.oldest(len(early)):
        if isinstance(value, bool):
            early.put(txn_id, Parked(value, now_ms, now_ms, -1, -1))  # keeps its place
    return early


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC)
