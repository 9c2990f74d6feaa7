"""The worker's parts, each owned by one module, built once at start (before Faust runs).

Scoring uses the champion, the learners' snapshot, the label join and the producers; the
outcomes agent uses the label join, the learning thread and the store; nothing else is
shared. app.py wires the parts to Faust; tests build only the part they need.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.foundation.dead_letters import DeadLetterWriter
from streamlearn.foundation.deliveries import TrackedProducer
from streamlearn.foundation.kafka import producer_config
from streamlearn.foundation.settings import Settings
from streamlearn.learners import checkpoint
from streamlearn.learners.learner_set import LearnerSet
from streamlearn.schemas import SchemaRegistry, Serde
from streamlearn.schemas.serde import default_registry
from streamlearn.streams.champion import Champion
from streamlearn.streams.label_join import LabelJoin
from streamlearn.streams.learning import LearningThread, restore
from streamlearn.streams.merchant_risk import MerchantRisk
from streamlearn.streams.monitoring import DriftReporter
from streamlearn.streams.outcome_acks import HeldOutcomes
from streamlearn.streams.outcomes import Outcomes
from streamlearn.streams.sink import StoreSink
from streamlearn.streams.stats import WorkerStats

log = logging.getLogger(__name__)


@dataclass
class Serdes:
    """The worker's encoders and decoders, sharing one registry of writer schemas (with the
    Confluent schema registry behind it when one is configured)."""

    registry: SchemaRegistry = field(default_factory=default_registry)

    def __post_init__(self) -> None:
        self.transaction = Serde("Transaction", self.registry)
        self.outcome = Serde("Outcome", self.registry)
        self.prediction = Serde("Prediction", self.registry)
        self.drift = Serde("DriftEvent", self.registry)


@dataclass
class WorkerParts:
    settings: Settings
    sink: StoreSink
    dlq: DeadLetterWriter
    champion: Champion
    merchant_risk: MerchantRisk
    label_join: LabelJoin
    learning: LearningThread
    outcomes: Outcomes
    held: HeldOutcomes
    stats: WorkerStats
    predictions: TrackedProducer  # predictions and drift events
    changelog: TrackedProducer  # the feature table's changelog
    drift: DriftReporter
    serdes: Serdes
    restored: bool = False
    restored_counters: dict[str, int] = field(default_factory=dict)  # as the checkpoint had them

    def close(self) -> None:
        """After Faust stopped: deliver what is queued, close the store sessions."""
        self.learning.stop()
        for producer in (self.predictions, self.changelog):
            producer.close()
        self.dlq.close()
        self.sink.close()


def producer(settings: Settings, name: str, **extra: Any) -> TrackedProducer:
    """A producer of the worker's: idempotent, lz4, murmur2 keys, deliveries tracked."""
    extra = {"enable.idempotence": True, "compression.type": "lz4", **extra}
    return TrackedProducer(producer_config(settings, **extra), name)


def build_parts(settings: Settings, sink: StoreSink) -> WorkerParts:
    """Every part, the learners restored from their checkpoint if one verifies."""
    serdes = Serdes(default_registry(settings))
    signing = settings.model_signing_key
    learners = LearnerSet(
        settings.learners, FEATURE_NAMES, psi_threshold=settings.drift_psi_threshold
    )
    merchant_risk = MerchantRisk(settings.label_maturity_days)
    path = checkpoint.checkpoint_path(settings.state_dir, settings.worker_id)
    configured = settings.checkpoint_key
    key = checkpoint.checkpoint_key(
        settings.state_dir, configured.get_secret_value().encode() if configured else None
    )
    signing_key = signing.get_secret_value().encode() if signing else None
    learning = LearningThread(learners, merchant_risk, checkpoint_path=path, key=key)
    label_join = LabelJoin(
        pending_max=settings.pending_max_entries,
        label_horizon_days=settings.label_horizon_days,
        early_wait_s=settings.early_outcome_wait_s,
    )
    stats = WorkerStats()
    dlq = DeadLetterWriter(settings)
    predictions = producer(
        settings, "predictions", **{"linger.ms": 1, "batch.num.messages": 10_000}
    )
    parts = WorkerParts(
        settings=settings,
        sink=sink,
        dlq=dlq,
        champion=Champion(signing_key),
        merchant_risk=merchant_risk,
        label_join=label_join,
        learning=learning,
        outcomes=Outcomes(
            settings,
            sink=sink,
            label_join=label_join,
            learning=learning,
            dlq=dlq,
            stats=stats,
            serde=serdes.outcome,
        ),
        held=HeldOutcomes(),
        stats=stats,
        predictions=predictions,
        changelog=producer(settings, "changelog", **{"linger.ms": 5}),
        drift=DriftReporter(predictions, settings.topic("drift-events"), serdes.drift, sink),
        serdes=serdes,
    )
    parts.restored = _restore(parts, path, key, learners)
    return parts


def _restore(parts: WorkerParts, path: Path, key: bytes, learners: LearnerSet) -> bool:
    """The checkpoint's learners, and the loop-side state it carried (parked outcomes...)."""
    restored = restore(path, key, learners)
    if restored is None:
        return False
    state, offsets = restored
    parts.label_join.restore(state)
    parts.outcomes.restored = dict(offsets)
    parts.outcomes.covered = dict(offsets)
    parts.learning.published.saved_covered = dict(offsets)
    parts.learning.published.status = learners.status()
    parts.restored_counters = {
        "learned": learners.counters["learned"],
        "duplicate_outcomes": learners.counters["duplicate"],
        "conflicting_outcomes": learners.counters["conflicting"],
        **parts.label_join.counters,
    }
    log.warning("learners restored from %s (outcomes covered: %s)", path, offsets)
    return True
