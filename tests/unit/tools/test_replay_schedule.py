"""A replay's plan in event time: outcomes with their label delay, steps, retrain points."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from streamlearn.tools.replay.schedule import (
    labelled,
    origin,
    outcomes,
    retrain_points,
    scored_start,
    steps,
    weeks,
)

DAY = 86_400_000
T0 = 1_522_540_800_000  # 2018-04-01T00:00Z
WALL = 1_767_225_600_000


def history(n_days: int = 30, per_day: int = 10, fraud_every: int = 7) -> pd.DataFrame:
    times = np.array(
        [T0 + d * DAY + (i + 1) * 3_600_000 for d in range(n_days) for i in range(per_day)]
    )
    n = len(times)
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "event_time": times,
            "is_fraud": np.arange(n) % fraud_every == 0,
            "outcome_time": np.zeros(n, dtype=np.int64),
        }
    )


def test_every_fraud_and_a_stable_share_of_legit_get_an_outcome() -> None:
    frame = history()
    chosen = labelled(frame["transaction_id"], frame["is_fraud"].to_numpy(), 0.1, seed=7)
    assert chosen[frame["is_fraud"].to_numpy()].all()
    legit = ~frame["is_fraud"].to_numpy()
    share = chosen[legit].mean()
    assert 0.04 < share < 0.2, share
    # The same ids are chosen whatever their order; another seed chooses others.
    shuffled = frame.sample(frac=1.0, random_state=3)
    again = labelled(shuffled["transaction_id"], shuffled["is_fraud"].to_numpy(), 0.1, seed=7)
    assert set(shuffled["transaction_id"][again]) == set(frame["transaction_id"][chosen])
    other = labelled(frame["transaction_id"], frame["is_fraud"].to_numpy(), 0.1, seed=8)
    assert set(frame["transaction_id"][other]) != set(frame["transaction_id"][chosen])
    assert labelled(frame["transaction_id"], frame["is_fraud"].to_numpy(), 1.0, 7).all()


def test_outcomes_come_a_label_delay_later_in_time_order() -> None:
    frame = history()
    out, not_due = outcomes(frame, label_delay_ms=7 * DAY, legit_share=0.1, seed=7, wall_ms=WALL)
    assert not_due == 0
    times = frame.set_index("transaction_id")["event_time"]
    assert (out["event_time"].to_numpy() == times[out["transaction_id"]].to_numpy() + 7 * DAY).all()
    assert out["event_time"].is_monotonic_increasing
    assert out["is_fraud"].sum() == frame["is_fraud"].sum()
    # Outcomes known after the wall clock are not known yet: not published.
    wall = int(frame["event_time"].iloc[-1])
    _, late = outcomes(frame, label_delay_ms=7 * DAY, legit_share=1.0, seed=7, wall_ms=wall)
    assert late == int((frame["event_time"] + 7 * DAY > wall).sum()) > 0


def test_outcome_times_from_the_file_never_precede_their_transaction() -> None:
    frame = history(n_days=2, per_day=2, fraud_every=1)
    frame["outcome_time"] = [0, T0, T0 + 5 * DAY, T0 + 6 * DAY]  # none, too early, ...
    out, _ = outcomes(frame, label_delay_ms=None, legit_share=1.0, seed=7, wall_ms=WALL)
    assert out["transaction_id"].tolist() == ["t1", "t2", "t3"]
    assert out["event_time"].tolist() == [frame["event_time"][1], T0 + 5 * DAY, T0 + 6 * DAY]


def test_retrain_points_start_at_the_warmup_and_follow_the_cadence() -> None:
    first, last = T0 + 3_600_000, T0 + 45 * DAY
    assert origin(first) == T0
    assert scored_start(first, 21 * DAY) == T0 + 21 * DAY
    assert retrain_points(first, last, 21 * DAY, 7 * DAY) == [
        T0 + d * DAY for d in (21, 28, 35, 42)
    ]
    assert retrain_points(first, last, 0, 7 * DAY) == [
        T0 + d * DAY for d in (7, 14, 21, 28, 35, 42)
    ]
    assert retrain_points(first, last, 21 * DAY, None) == [T0 + 21 * DAY]
    assert retrain_points(first, last, 60 * DAY, 7 * DAY) == []  # warm-up longer than the file


def test_steps_cover_everything_once_and_put_outcomes_after_their_transactions() -> None:
    frame = history(n_days=20)
    out, _ = outcomes(frame, label_delay_ms=2 * DAY, legit_share=0.5, seed=7, wall_ms=WALL)
    txn_times, out_times = frame["event_time"].to_numpy(), out["event_time"].to_numpy()
    points = [T0 + 7 * DAY + 12 * 3_600_000, T0 + 14 * DAY]  # a point mid-day ends a step too
    plan = steps(txn_times, out_times, DAY, points)
    assert plan[0].txn_from == 0 and plan[-1].txn_to == len(frame)
    assert plan[-1].out_to == len(out)
    for a, b in itertools.pairwise(plan):
        assert a.txn_to == b.txn_from and a.out_to == b.out_from and a.end <= b.start
    for s in plan:
        assert (txn_times[s.txn_from : s.txn_to] >= s.start).all()
        assert (txn_times[s.txn_from : s.txn_to] < s.end).all()
        assert (out_times[s.out_from : s.out_to] < s.end).all()
        # Every outcome published in a step belongs to a transaction published by then.
        published = set(frame["transaction_id"][: s.txn_to])
        assert set(out["transaction_id"][s.out_from : s.out_to]) <= published
    assert [s.end for s in plan if s.retrain] == points
    assert max(s.end - s.start for s in plan) <= DAY  # never more than a step ahead


def test_weeks_of_the_scored_window() -> None:
    assert weeks(T0, T0 + 20 * DAY) == [T0, T0 + 7 * DAY, T0 + 14 * DAY]
    assert weeks(T0, T0 - 1) == []


def test_a_label_shorter_than_the_step_waits_for_its_own_transactions() -> None:
    frame = history(n_days=6)
    for delay, own in ((3 * DAY, False), (3_600_000, True)):
        out, _ = outcomes(frame, label_delay_ms=delay, legit_share=1.0, seed=7, wall_ms=WALL)
        plan = steps(
            frame["event_time"].to_numpy(),
            out["event_time"].to_numpy(),
            DAY,
            [],
            out["txn_time"].to_numpy(),
        )
        with_outcomes = [s for s in plan if s.out_to > s.out_from]
        assert with_outcomes and all(s.own_outcomes == own for s in with_outcomes), delay
