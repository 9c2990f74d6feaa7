"""The label join's rules without Kafka: horizon (expired), parked outcomes, repeats."""

from __future__ import annotations

from types import SimpleNamespace

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.foundation.settings import Settings
from streamlearn.learners.metrics import Scorecard
from streamlearn.streams.learning import DAY_MS, learn_one, learn_parked
from streamlearn.streams.merchant_risk import MerchantRisk
from streamlearn.streams.online import OnlineLearning
from streamlearn.streams.pending import BoundedMap, Parked, pack_scored
from streamlearn.streams.stats import WorkerStats

T0 = 1_790_000_000_000


def ctx() -> SimpleNamespace:
    return SimpleNamespace(
        settings=Settings(label_horizon_days=90),
        online=OnlineLearning("lr", FEATURE_NAMES),
        scorecard=Scorecard(),
        merchant_risk=MerchantRisk(),
        learned=BoundedMap(100),
        early=BoundedMap(100),
        stats=WorkerStats(),
        unlearned=[],
    )


def logged(event_ms: int) -> object:
    return pack_scored([1.0] * len(FEATURE_NAMES), {"river_lr": 0.2}, "m1", event_ms)


def test_an_outcome_past_the_horizon_is_recorded_not_learned() -> None:
    c = ctx()
    assert learn_one(c, "a", logged(T0), True, T0 + 89 * DAY_MS, 0, 1, T0)
    assert not learn_one(c, "b", logged(T0), True, T0 + 91 * DAY_MS, 0, 2, T0)
    assert c.stats.learned == 1 and c.stats.expired_outcomes == 1
    assert c.online.lr.learned == 1 and c.learned.get("b") is None
    (row,) = c.unlearned
    assert row[0] == "b" and row[4] == "expired" and row[5:] == [0, 2]


def test_a_parked_outcome_is_learned_once_when_its_transaction_comes() -> None:
    c = ctx()
    c.early.put("p", Parked(True, T0 + DAY_MS, T0, 1, 7))
    learn_parked(c, "p", logged(T0), T0)
    learn_parked(c, "p", logged(T0), T0)  # nothing parked any more
    assert c.stats.learned == 1 and c.learned.get("p") is True and len(c.early) == 0
    # A repeat parked later is counted as one, not learned.
    c.early.put("p", Parked(True, T0 + DAY_MS, T0, 1, 9))
    learn_parked(c, "p", logged(T0), T0)
    assert c.stats.learned == 1 and c.stats.duplicate_outcomes == 1
