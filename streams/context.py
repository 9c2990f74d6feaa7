"""Everything the agents share inside one worker process, built once at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from streamlearn.foundation.dead_letters import DeadLetterWriter
from streamlearn.foundation.settings import Settings
from streamlearn.learners.metrics import Scorecard
from streamlearn.learners.online import OnlineLogistic
from streamlearn.schemas import SchemaRegistry, Serde
from streamlearn.streams.champion import Champion
from streamlearn.streams.merchant_risk import MerchantRisk
from streamlearn.streams.outcome_acks import HeldOutcomes
from streamlearn.streams.pending import BoundedMap, Parked, Scored
from streamlearn.streams.sink import StoreSink
from streamlearn.streams.stats import WorkerStats


@dataclass
class WorkerContext:
    settings: Settings
    store: Any
    sink: StoreSink
    producer: Producer
    dlq: DeadLetterWriter
    champion: Champion
    learner: OnlineLogistic
    merchant_risk: MerchantRisk
    table: Any = None  # the Faust table of per-card and per-merchant state
    pending: BoundedMap[Scored] = field(default=None)  # type: ignore[arg-type]  # sized below
    early: BoundedMap[Parked] = field(default_factory=lambda: BoundedMap(100_000))
    learned: BoundedMap[bool] = field(default_factory=lambda: BoundedMap(1_000_000))
    scorecard: Scorecard = field(default_factory=Scorecard)
    stats: WorkerStats = field(default_factory=WorkerStats)
    txn_serde: Serde = field(default_factory=lambda: Serde("Transaction"))
    outcome_serde: Serde = field(default_factory=lambda: Serde("Outcome"))
    prediction_serde: Serde = field(default_factory=lambda: Serde("Prediction"))
    drift_serde: Serde = field(default_factory=lambda: Serde("DriftEvent"))
    delivery_errors: list[str] = field(default_factory=list)
    registry: SchemaRegistry | None = None
    writer: Any = None  # streams.writer.BatchWriter, bound to the running loop
    offset_guards: tuple = ()  # streams.offsets.OffsetGuard per input topic
    online: Any = None  # streams.online.OnlineLearning: learners, blend, drift monitors
    # Outcome events learned from but not yet covered by a learner checkpoint (acked after).
    held_outcomes: HeldOutcomes = field(default_factory=HeldOutcomes)
    # streamlearn.unlearned_outcomes rows not yet stored (expired or unknown outcomes).
    unlearned: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.pending is None:
            self.pending = BoundedMap(self.settings.pending_max_entries)
