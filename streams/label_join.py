"""The label join: an outcome meets what was served for its transaction when it was scored.

Scoring logs each transaction's features and scores here (`on_scored`); an outcome takes them
back (`take`), or, if its transaction was not scored yet, is parked until it is (or until
`early_outcome_wait_s`, then it is `unknown`). An outcome known more than
`label_horizon_days` after its transaction is `expired`: stored, not learned. The pending map
keeps the newest `pending_max_entries` scored transactions; older ones are looked up in
ClickHouse (streams/outcomes.py). Entries are plain tuples of atomic values so that the
garbage collector stops tracking them: half a million objects it would walk on every full
collection held the loop for ~100 ms.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamlearn.foundation.clock import DAY_MS, utc
from streamlearn.streams.pending import BoundedMap, Parked

EXPIRED = "expired"  # known more than label_horizon_days after its transaction
UNKNOWN = "unknown"  # its transaction was not scored within early_outcome_wait_s
UNLEARNED_COLUMNS = (
    "transaction_id",
    "is_fraud",
    "outcome_time",
    "transaction_time",
    "reason",
    "source_partition",
    "source_offset",
)
# Rows of unlearned_outcomes waiting for the store (they ride in learner checkpoints too): a long
# store outage must not grow them without end. Past this many, each further one is counted in
# `unlearned_rows_not_stored` (on /status) instead of kept; its outcome is still in `outcomes`.
UNLEARNED_MAX_ROWS = 100_000

log = logging.getLogger(__name__)
# (features, scores as served incl. "served", merchant_id, transaction event time ms)
Logged = tuple[array, dict[str, float], str, int]


def logged_entry(features: np.ndarray, scores: dict[str, float], txn: Mapping[str, Any]) -> Logged:
    """What is kept of a scored transaction until its outcome: packed doubles, ~270 bytes."""
    return (array("d", features.tolist()), scores, txn["merchant_id"], txn["event_time"])


@dataclass(slots=True)
class Example:
    """One outcome joined with what was served for its transaction: what learners learn."""

    txn_id: str
    features: array
    scores: dict[str, float]
    merchant_id: str
    event_ms: int
    is_fraud: bool
    outcome_ms: int


class LabelJoin:
    """Pending scored transactions, parked outcomes, and the outcomes not learned from."""

    def __init__(
        self,
        *,
        pending_max: int,
        label_horizon_days: float,
        early_wait_s: float,
        early_max: int = 100_000,
        unlearned_max: int = UNLEARNED_MAX_ROWS,
    ) -> None:
        self.pending: BoundedMap[Logged] = BoundedMap(pending_max)
        self.early: BoundedMap[Parked] = BoundedMap(early_max)
        self.horizon_ms = label_horizon_days * DAY_MS
        self.early_wait_ms = early_wait_s * 1000
        self.unlearned: list[list[Any]] = []  # streamlearn.unlearned_outcomes rows to store
        self.unlearned_max = unlearned_max
        self.counters = {
            "early_outcomes": 0,
            "expired_outcomes": 0,
            "unknown_outcomes": 0,
            "unlearned_rows_not_stored": 0,
        }

    # -- scoring side ---------------------------------------------------------------------
    def on_scored(self, txn_id: str, entry: Logged) -> Example | None:
        """Keep a scored transaction for its outcome; if the outcome came first, join now."""
        parked = self.early.pop(txn_id)
        if parked is None:
            self.pending.put(txn_id, entry)
            return None
        return self.join(txn_id, entry, parked)

    # -- outcome side ---------------------------------------------------------------------
    def take(self, txn_id: str) -> Logged | None:
        return self.pending.pop(txn_id)

    def join(self, txn_id: str, entry: Logged, parked: Parked) -> Example | None:
        """The example to learn, or None if the outcome is past the label horizon."""
        features, scores, merchant_id, event_ms = entry
        if parked.outcome_ms - event_ms > self.horizon_ms:
            self._unlearned(txn_id, parked, event_ms, EXPIRED)
            return None
        return Example(
            txn_id, features, scores, merchant_id, event_ms, parked.is_fraud, parked.outcome_ms
        )

    def park(self, txn_id: str, parked: Parked) -> None:
        """An outcome whose transaction is not scored yet waits for it (bounded)."""
        self.counters["early_outcomes"] += 1
        pushed_out = self.early.put(txn_id, parked)
        if pushed_out is not None:
            self._unlearned(pushed_out[0], pushed_out[1], None, UNKNOWN)

    def give_up(self, txn_id: str, parked: Parked, now_ms: int) -> bool:
        """Past early_outcome_wait_s without its transaction: recorded as unknown."""
        if now_ms - parked.parked_ms <= self.early_wait_ms:
            return False
        self.early.pop(txn_id)
        self._unlearned(txn_id, parked, None, UNKNOWN)
        return True

    def restore(self, state: Mapping[str, Any]) -> None:
        """The parked outcomes, counters and unstored rows a learner checkpoint carried."""
        for txn_id, parked in state.get("parked", []):
            self.early.put(txn_id, parked if isinstance(parked, Parked) else Parked(*parked))
        self.counters.update(state.get("loop_counters", {}))
        self.unlearned.extend(state.get("unlearned", []))

    def _unlearned(self, txn_id: str, parked: Parked, txn_ms: int | None, reason: str) -> None:
        key = "expired_outcomes" if reason == EXPIRED else "unknown_outcomes"
        self.counters[key] += 1
        if len(self.unlearned) >= self.unlearned_max:
            if self.counters["unlearned_rows_not_stored"] == 0:  # once: the counter says the rest
                log.warning(
                    "%d unlearned-outcome rows wait for the store: further ones are counted in "
                    "unlearned_rows_not_stored, not kept (their outcomes are in `outcomes`)",
                    len(self.unlearned),
                )
            self.counters["unlearned_rows_not_stored"] += 1
            return
        self.unlearned.append(
            [
                txn_id,
                parked.is_fraud,
                utc(parked.outcome_ms),
                None if txn_ms is None else utc(txn_ms),
                reason,
                parked.partition,
                parked.offset,
            ]
        )
