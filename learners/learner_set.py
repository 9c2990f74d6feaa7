"""A worker's online learning: learners, their blend, the scorecard and the drift monitors.

One thread owns a LearnerSet and feeds it scored batches (`observe`: unsupervised learning and
data/score drift) and labeled outcomes (`learn`). The scoring path never touches it: it scores
with a `ScoringSnapshot`, frozen copies of every learner's scorer, replaced as learning goes on.
Data drift is measured against the served champion's training distribution (its release's
`reference_bins`), and follows it through swaps; without one, against the first
REFERENCE_ROWS feature vectors observed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from streamlearn.learners.blend import BLEND, Blend, BlendScorer
from streamlearn.learners.drift import (
    ConceptDrift,
    DataDrift,
    DriftEvent,
    ReferenceBins,
    ScoreDrift,
    bins_from_record,
    reference_bins,
)
from streamlearn.learners.guard import BlendGuard
from streamlearn.learners.metrics import Scorecard
from streamlearn.learners.registry import Learner, build_learners

log = logging.getLogger(__name__)
CHAMPION = "lightgbm"
REFERENCE_ROWS = 5000
FIRST_EVENTS = f"first {REFERENCE_ROWS} events"  # the fallback reference, as /status names it
# Calendar features are not watched for data drift: a window of 5,000 events spans less than
# their period (a day at ~0.06 events/s, a week), so against any reference they say what time
# it is, not that traffic changed (day_of_week: PSI 6.1 in a concept-drift test run).
UNWATCHED = ("hour_of_day", "day_of_week")
LEARNED = "learned"
DUPLICATE = "duplicate"
CONFLICTING = "conflicting"


class Scorer(Protocol):
    """A frozen learner as the scoring path applies it."""

    def score_batch(self, matrix: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class ScoringSnapshot:
    """Every learner's scorer and the blend's weights at one moment of learning."""

    scorers: tuple[tuple[str, Scorer], ...]
    blend: BlendScorer
    fallback: str  # served before a champion and a ready blend exist (the lr learner)
    # The BlendGuard's verdict: with a champion, the blend is served only if it does not
    # trail the champion on recent labels.
    serve_blend: bool = True

    def score(
        self, matrix: np.ndarray, champion: np.ndarray | None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, str]:
        """(every component's scores, the served scores, the name of what is served)."""
        columns = {name: s.score_batch(matrix) for name, s in self.scorers}
        if champion is not None:
            columns[CHAMPION] = champion
        columns[BLEND] = self.blend.score_batch(columns, len(matrix))
        if self.blend.ready and (champion is None or self.serve_blend):
            source = BLEND
        elif champion is not None:
            source = CHAMPION
        else:
            source = self.fallback
        return columns, columns[source], source


class LearnedIds:
    """The label each of the newest `max_entries` learned transactions was learned with."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._labels: OrderedDict[str, bool] = OrderedDict()

    def get(self, txn_id: str) -> bool | None:
        return self._labels.get(txn_id)

    def put(self, txn_id: str, is_fraud: bool) -> None:
        self._labels[txn_id] = is_fraud
        if len(self._labels) > self.max_entries:
            self._labels.popitem(last=False)

    def newest(self, n: int) -> list[tuple[str, bool]]:
        items = list(self._labels.items())
        return items[-n:] if n < len(items) else items

    def __len__(self) -> int:
        return len(self._labels)


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """What the learners observe of a batch the scoring path served."""

    matrix: np.ndarray  # its feature vectors
    served: np.ndarray  # the scores it was served
    source: str  # the scorer that served them
    time_ms: int
    version: str  # the champion's version ("none" without one)
    release: Mapping[str, Any] | None = None  # the champion's release record


class LearnerSet:
    """Learners, blend, scorecard and drift monitors; a single thread calls its methods."""

    def __init__(
        self,
        spec: str,
        feature_names: Sequence[str],
        *,
        psi_threshold: float = 0.2,
        learned_ids: int = 1_000_000,
    ) -> None:
        self.feature_names = tuple(feature_names)
        self.psi_threshold = psi_threshold
        self.learners: list[Learner] = build_learners(spec, self.feature_names)
        self.blend = Blend([CHAMPION, *(m.name for m in self.learners)], lead=CHAMPION)
        self.guard = BlendGuard()
        self.scorecard = Scorecard()
        self.learned = LearnedIds(learned_ids)
        self.counters = {LEARNED: 0, DUPLICATE: 0, CONFLICTING: 0}
        self.data_drift: DataDrift | None = None
        self.drift_reference = ""  # what data drift is measured against, for /status
        self._first_events: dict[str, ReferenceBins] | None = None
        self._reference_rows: list[np.ndarray] = []
        self.score_drift = ScoreDrift()
        self.concept_drift = ConceptDrift(CHAMPION)
        self.served_source = ""
        self.champion_version = ""  # the version observe() saw scoring last
        self.unsaved_drift: list[tuple[DriftEvent, str]] = []
        self.recent_drift: deque[dict[str, Any]] = deque(maxlen=100)

    @property
    def lr_name(self) -> str:
        return self.learners[0].name

    def snapshot(self) -> ScoringSnapshot:
        """Frozen scorers of every learner and the blend, for the scoring path."""
        return ScoringSnapshot(
            tuple((m.name, m.scorer()) for m in self.learners),
            self.blend.scorer(),
            self.lr_name,
            self.guard.decide(self.legit_weight()),
        )

    def legit_weight(self) -> float:
        """How many traffic payments a legit label stands for: the labels' log-odds bias the
        blend measured against the calibrated champion, less its own fraud weighting (10% of
        legit payments labelled: about 10). 1 until measured."""
        blend = self.blend
        bias = float(blend.__dict__.get("offset", 0.0)) - float(np.log(blend.fraud_weight))
        return float(np.clip(np.exp(bias), 1.0, 1e4))

    # -- unlabeled: every scored batch ----------------------------------------------------
    def observe(self, batch: ScoredBatch) -> None:
        """A scored batch: unsupervised learners learn it; score and data drift watch it."""
        matrix, served, source = batch.matrix, batch.served, batch.source
        time_ms, version, release = batch.time_ms, batch.version, batch.release
        for m in self.learners:
            m.learn_unlabeled(matrix)
        if version != self.champion_version:
            if self.champion_version:
                # The guard's comparisons were with the champion served before.
                self.guard.reset(f"champion {version} replaced {self.champion_version}")
            self.champion_version = version
        if source != self.served_source:
            self.served_source = source
            self.score_drift.reset()  # a new source is not a drift of the served score
        self._record(self.score_drift.update(served, time_ms), version)
        self._watch_data(matrix, time_ms, version, release)

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
        log.info("data drift reference: %s", label)
        self.drift_reference = label
        watched = {name: b for name, b in bins.items() if name not in UNWATCHED}
        self.data_drift = DataDrift(self.feature_names, watched, threshold=self.psi_threshold)

    # -- labeled: every outcome -----------------------------------------------------------
    def learn(
        self,
        txn_id: str,
        features: Sequence[float],
        scores: Mapping[str, float],
        is_fraud: bool,
        time_ms: int,
        event_ms: int,
    ) -> str:
        """Learn one outcome from what was served for its transaction, once per transaction:
        a repeat is counted (DUPLICATE), a contradiction too (CONFLICTING), neither relearns."""
        previous = self.learned.get(txn_id)
        if previous is not None:
            kind = DUPLICATE if previous == is_fraud else CONFLICTING
            self.counters[kind] += 1
            return kind
        for m in self.learners:
            m.learn(features, is_fraud)
        self.blend.learn(scores, is_fraud)
        blended, champion = scores.get(BLEND), scores.get(CHAMPION)
        if blended is not None and champion is not None:
            self.guard.update(is_fraud, blended, champion)
        self.scorecard.update(is_fraud, scores, event_ms)
        if champion is not None:
            self._record(self.concept_drift.update(champion, is_fraud, time_ms), "")
        self.learned.put(txn_id, is_fraud)
        self.counters[LEARNED] += 1
        return LEARNED

    # -- drift events ---------------------------------------------------------------------
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

    def take_drift(self) -> list[tuple[DriftEvent, str]]:
        """The drift events detected since the last call (the caller publishes and stores)."""
        events, self.unsaved_drift = self.unsaved_drift, []
        return events

    def status(self) -> dict[str, Any]:
        """The /status fields of online learning."""
        return {
            "learners": [m.name for m in self.learners],
            "served_by": self.served_source,
            "served_why": self._served_why(),
            "blend": {
                "ready": self.blend.ready,
                "labels": self.blend.labels,
                "weights": self.blend.weights_by_component(),
                "guard": dict(self.guard.figures),
            },
            "drift_events": list(self.recent_drift),
            "concept_drift": {
                "subject": self.concept_drift.subject,
                "labels": self.concept_drift.labels,
                "detections": list(getattr(self.concept_drift, "detections", [])),
            },
            "drift_psi": dict(self.data_drift.last_psi) if self.data_drift else {},
            "drift_reference": self.drift_reference,
            "online_metrics": self.scorecard.snapshot(),
            "learned_by_learner": {
                m.name: getattr(m, "learned", getattr(m, "seen", None)) for m in self.learners
            },
        }

    def _served_why(self) -> str:
        source, blend = self.served_source, self.blend
        if source == BLEND and not self.guard.serve_blend:
            return "no champion yet: the blend of the learners"
        if source in (BLEND, CHAMPION) and blend.ready:
            return self.guard.reason
        if source == CHAMPION or source == self.lr_name:
            return (
                f"the blend is not ready ({blend.labels} labels, {blend.positives} frauds; "
                f"{blend.min_labels} and {blend.min_positives} needed)"
                + ("" if source == CHAMPION else " and no champion yet")
            )
        return ""

    # -- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the learning lineage."""
        return {
            "feature_names": self.feature_names,
            "learners": self.learners,
            "blend": self.blend,
            "blend_guard": self.guard,
            "concept_drift": self.concept_drift,
            "scorecard": self.scorecard,
            "counters": dict(self.counters),
        }

    def restore(self, state: Mapping[str, Any], learned: Sequence[tuple[str, bool]]) -> bool:
        """Take a checkpoint's learners if they are the configured ones (same features)."""
        names = [m.name for m in state["learners"]]
        if tuple(state["feature_names"]) != self.feature_names or names != [
            m.name for m in self.learners
        ]:
            log.warning("checkpoint learners %s differ from the configured ones: ignored", names)
            return False
        self.learners = list(state["learners"])
        self.blend = state["blend"]
        self.guard = state.get("blend_guard") or BlendGuard()  # none before v2 checkpoints
        self.concept_drift = state["concept_drift"]
        self.scorecard = state["scorecard"]
        self.counters.update(state.get("counters", {}))
        for txn_id, label in learned:
            self.learned.put(txn_id, label)
        return True
