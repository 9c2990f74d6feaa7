"""Detection quality on a generated history with the handbook's three fraud patterns.

Four weeks warm the state and train the first champion (not counted); two scored weeks
follow, with a 7-day label delay and weekly retrains behind the production gate
(tests/quality/harness.py: the worker's features, learners, blend and retrain code, in
process). Each scored week: the
served score within 0.03 average precision of the offline reference, and at least the
champion's. About a minute on two cores.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from streamlearn.batch_retrain.gate import DEFAULT_GATE
from tests.quality.handbook import generate
from tests.quality.harness import Backtest, backtest, features


@pytest.fixture(scope="module")
def run() -> Backtest:
    logging.getLogger("streamlearn.learners").setLevel(logging.ERROR)  # drift warnings
    h = generate(customers=1500, terminals=3000, days=42, seed=3)
    # The production retrain: the gate's default rule (margin 0, a loss beyond 2 bootstrap
    # standard errors refused) judges the chosen rounds refit on train and validation, and a
    # promoted model is refit on every row.
    return backtest(h, features(h), start_day=28, refit=True, gate=DEFAULT_GATE)


def test_served_is_within_003_ap_of_the_offline_reference_each_week(run: Backtest) -> None:
    assert len(run.weeks) == 2
    for week in run.weeks:
        assert week["served"]["ap"] >= week["reference"]["ap"] - 0.03, week


def test_served_is_never_below_the_champion(run: Backtest) -> None:
    for week in run.weeks:
        assert week["served"]["ap"] >= week["lightgbm"]["ap"] - 1e-9, week


def test_the_patterns_are_caught_well_above_chance(run: Backtest) -> None:
    # The generated fraud is ~0.7% of payments: an AP of 0.3 is 40x chance.
    for week in run.weeks:
        assert week["served"]["ap"] > 0.3 and week["served"]["auc"] > 0.85, week
    assert all(np.isfinite(w["reference"]["ap"]) for w in run.weeks)
