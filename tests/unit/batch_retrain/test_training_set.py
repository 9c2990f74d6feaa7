"""The training set built in ClickHouse is point-in-time correct and split by time."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from streamlearn.batch_retrain.training_set import build_training_set
from streamlearn.domain.features import FEATURE_VERSION
from streamlearn.foundation.errors import NotEnoughData
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.tables import TRANSACTION_COLUMN_NAMES as TXN_COLUMNS
from streamlearn.streams.outcomes import OUTCOME_COLUMNS

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=10)
FEATURES = ("amount", "x1", "x2")


def txn_row(tid: str, at: dt.datetime, features: dict[str, float], offset: int = 0) -> list:
    return [
        tid,
        at,
        f"card-{offset % 7}",
        "m-1",
        features.get("amount", 1.0),
        "EUR",
        None,
        None,
        "pos",
        None,
        FEATURE_VERSION,
        features,
        0.0,
        None,
        None,
        {},
        "none",
        None,
        at,
        0,
        offset,
    ]


def outcome_row(tid: str, is_fraud: bool, at: dt.datetime) -> list:
    return [tid, is_fraud, at, at, 0, 0]


@pytest.fixture
def store(tmp_path):
    s = Store(f"chdb://{tmp_path}/ch")
    s.migrate()
    yield s
    s.close()


N = 1200  # one transaction every 10 minutes: 8 days 8 hours of history
AS_OF = T0 + STEP * (N - 1)


def t(i: int) -> dt.datetime:
    return T0 + STEP * i


@pytest.fixture
def history(store):
    """N transactions; every 20th is fraud, reported an hour later; plus special cases."""
    rows = [
        txn_row(f"t{i}", t(i), {"amount": float(i), "x1": float(i % 20 == 0), "x2": 0.5}, i)
        for i in range(N)
    ]
    store.insert("transactions", rows, TXN_COLUMNS)
    # A replayed batch logs some transactions twice: FINAL must count each once.
    store.insert("transactions", rows[:50], TXN_COLUMNS)
    # One transaction logged with an empty feature map: missing features are NaN, not 0.
    empty = txn_row("no-features", t(5) + dt.timedelta(seconds=1), {})
    store.insert("transactions", [empty], TXN_COLUMNS)
    outcomes = [outcome_row(f"t{i}", True, t(i) + dt.timedelta(hours=1)) for i in range(0, N, 20)]
    outcomes += [
        # Fraud reported only after the data clock: unknown at as_of, so legit.
        outcome_row("t1", True, AS_OF + dt.timedelta(hours=1)),
        # A chargeback later reversed: the latest outcome wins.
        outcome_row("t3", True, t(3) + dt.timedelta(hours=1)),
        outcome_row("t3", False, t(3) + dt.timedelta(hours=2)),
        # Legit first, fraud later (both known at as_of).
        outcome_row("t7", False, t(7) + dt.timedelta(hours=1)),
        outcome_row("t7", True, t(7) + dt.timedelta(hours=3)),
        # Reported two hours before the newest event: known at AS_OF, not at AS_OF - 3h.
        outcome_row("t11", True, AS_OF - dt.timedelta(hours=2)),
    ]
    store.insert("outcomes", outcomes, OUTCOME_COLUMNS)
    return store


def labels(ts) -> dict[str, int]:
    out = {}
    for split in (ts.train, ts.valid, ts.holdout):
        out.update(zip(split.transaction_id, split.y.tolist(), strict=True))
    return out


def test_point_in_time_labels_and_maturity(history):
    ts = build_training_set(
        history, feature_names=FEATURES, maturity_s=86_400, min_rows=10, with_ids=True
    )
    assert ts.as_of == int(AS_OF.timestamp() * 1000)
    assert ts.cutoff == ts.as_of - 86_400_000
    got = labels(ts)
    mature = [i for i in range(N) if t(i) <= AS_OF - dt.timedelta(days=1)]
    assert len(got) == len(mature) + 1  # + "no-features"; immature ones and duplicates excluded
    assert f"t{mature[-1] + 1}" not in got
    assert got["t0"] == 1 and got["t20"] == 1
    assert got["t1"] == 0  # its fraud outcome is known only after as_of
    assert got["t3"] == 0  # reversed
    assert got["t7"] == 1  # legit, then fraud
    assert got["t2"] == 0  # mature and never labeled: legit
    assert ts.rows_available == len(got)
    assert ts.positives_available == sum(got.values())


def test_explicit_as_of_hides_later_outcomes(history):
    def label_of_t11(as_of: dt.datetime) -> int:
        ts = build_training_set(
            history,
            feature_names=FEATURES,
            maturity_s=86_400,
            as_of_ms=int(as_of.timestamp() * 1000),
            min_rows=10,
            with_ids=True,
        )
        assert ts.as_of == int(as_of.timestamp() * 1000)
        return labels(ts)["t11"]

    assert label_of_t11(AS_OF) == 1
    assert label_of_t11(AS_OF - dt.timedelta(hours=3)) == 0


def test_fractional_maturity_days(history):
    ts = build_training_set(history, feature_names=FEATURES, maturity_days=0.5, min_rows=10)
    assert ts.cutoff == ts.as_of - 43_200_000
    assert max(s.event_time.max() for s in (ts.train, ts.valid, ts.holdout)) <= ts.cutoff


def test_splits_are_ordered_by_time_and_disjoint(history):
    ts = build_training_set(
        history, feature_names=FEATURES, maturity_s=86_400, min_rows=10, with_ids=True
    )
    train, valid, holdout = ts.train, ts.valid, ts.holdout
    assert train.event_time.max() < valid.event_time.min()
    assert valid.event_time.max() < holdout.event_time.min()
    ids = [set(s.transaction_id) for s in (train, valid, holdout)]
    assert not (ids[0] & ids[1] or ids[1] & ids[2] or ids[0] & ids[2])
    total = train.rows + valid.rows + holdout.rows
    assert total == ts.rows_available
    assert abs(train.rows / total - 0.7) < 0.02 and abs(holdout.rows / total - 0.15) < 0.02
    assert ts.train_start == train.event_time.min() and ts.train_end == valid.event_time.max()
    assert ts.holdout_end <= ts.cutoff


def test_features_are_columns_in_requested_order(history):
    ts = build_training_set(
        history, feature_names=("x2", "amount"), maturity_s=86_400, min_rows=10, with_ids=True
    )
    tr = ts.train
    assert tr.X.shape == (tr.rows, 2) and tr.X.dtype == np.float64
    i = list(tr.transaction_id).index("t9")
    assert tr.X[i].tolist() == [0.5, 9.0]
    j = list(tr.transaction_id).index("no-features")
    assert math.isnan(tr.X[j, 0]) and math.isnan(tr.X[j, 1])
    assert np.all(tr.w == 1.0)


def test_legit_downsampling_reweights(history):
    full = build_training_set(history, feature_names=FEATURES, maturity_s=86_400, min_rows=10)
    ts = build_training_set(
        history, feature_names=FEATURES, maturity_s=86_400, min_rows=10, max_rows=400
    )
    assert ts.legit_weight > 1
    rows = ts.train.rows + ts.valid.rows + ts.holdout.rows
    assert rows < full.rows_available
    positives = sum(s.positives for s in (ts.train, ts.valid, ts.holdout))
    assert positives == full.positives_available  # fraud is never sampled away
    for s in (ts.train, ts.valid, ts.holdout):
        assert np.all(s.w[s.y == 1] == 1.0) and np.all(s.w[s.y == 0] == ts.legit_weight)
    weight = sum(s.w.sum() for s in (ts.train, ts.valid, ts.holdout))
    assert abs(weight / full.rows_available - 1) < 0.25


def test_not_enough_data_names_the_fix(history, store):
    with pytest.raises(NotEnoughData, match="simulate --backfill-days"):
        build_training_set(history, feature_names=FEATURES, maturity_s=86_400, min_positives=500)


def test_empty_store(store):
    with pytest.raises(NotEnoughData, match="no transactions"):
        build_training_set(store, feature_names=FEATURES)


def test_feature_names_must_be_identifiers(store):
    with pytest.raises(ValueError, match="identifiers"):
        build_training_set(store, feature_names=("amount", "x'; DROP TABLE t --"))
