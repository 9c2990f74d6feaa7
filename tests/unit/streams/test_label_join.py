"""The label join's rules without Kafka: horizon (expired), parked outcomes, repeats."""

from __future__ import annotations

import numpy as np

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.foundation.clock import DAY_MS
from streamlearn.learners.learner_set import DUPLICATE, LEARNED, LearnerSet
from streamlearn.streams.label_join import LabelJoin, logged_entry
from streamlearn.streams.pending import Parked

T0 = 1_790_000_000_000


def join() -> LabelJoin:
    return LabelJoin(pending_max=100, label_horizon_days=90, early_wait_s=3600)


def logged(event_ms: int):
    txn = {"merchant_id": "m1", "event_time": event_ms}
    return logged_entry(np.ones(len(FEATURE_NAMES)), {"river_lr": 0.2}, txn)


def test_an_outcome_past_the_horizon_is_recorded_not_learned() -> None:
    j = join()
    assert j.join("a", logged(T0), Parked(True, T0 + 89 * DAY_MS, T0, 0, 1)) is not None
    assert j.join("b", logged(T0), Parked(True, T0 + 91 * DAY_MS, T0, 0, 2)) is None
    assert j.counters["expired_outcomes"] == 1
    (row,) = j.unlearned
    assert row[0] == "b" and row[4] == "expired" and row[5:] == [0, 2]


def test_a_parked_outcome_is_joined_once_when_its_transaction_is_scored() -> None:
    j = join()
    j.park("p", Parked(True, T0 + DAY_MS, T0, 1, 7))
    example = j.on_scored("p", logged(T0))
    assert example is not None and example.is_fraud and example.txn_id == "p"
    assert len(j.early) == 0 and j.take("p") is None  # joined: nothing left pending
    assert j.on_scored("q", logged(T0)) is None and j.take("q") is not None  # kept pending


def test_a_repeat_is_counted_not_relearned() -> None:
    learners = LearnerSet("lr", FEATURE_NAMES)
    x = np.ones(len(FEATURE_NAMES))
    assert learners.learn("p", x, {"river_lr": 0.2}, True, T0, T0) == LEARNED
    assert learners.learn("p", x, {"river_lr": 0.2}, True, T0, T0) == DUPLICATE
    assert learners.counters == {"learned": 1, "duplicate": 1, "conflicting": 0}
    assert learners.learners[0].learned == 1


def test_an_outcome_waiting_too_long_is_unknown() -> None:
    j = join()
    parked = Parked(False, T0, T0, 2, 5)
    j.park("x", parked)
    assert not j.give_up("x", parked, T0 + 10_000)
    assert j.give_up("x", parked, T0 + 3_600_001)
    assert j.counters["unknown_outcomes"] == 1 and j.unlearned[0][4] == "unknown"


def test_unlearned_rows_waiting_for_the_store_are_bounded_and_the_rest_counted() -> None:
    j = LabelJoin(pending_max=100, label_horizon_days=90, early_wait_s=3600, unlearned_max=3)
    for i in range(5):
        j.join(f"t{i}", logged(T0), Parked(True, T0 + 91 * DAY_MS, T0, 0, i))
    assert [row[0] for row in j.unlearned] == ["t0", "t1", "t2"]
    assert j.counters["expired_outcomes"] == 5  # every one is still counted by its reason
    assert j.counters["unlearned_rows_not_stored"] == 2
