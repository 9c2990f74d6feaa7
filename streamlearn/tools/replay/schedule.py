"""What a replay publishes and when, in event time (pure): the outcomes (with their label delay,
every fraud and a share of legit), the steps the publisher waits for the worker between, and
the retrain points.

Within a step, the step's transactions go first; the outcomes known during the step follow,
once the worker has scored the step's transactions if any of them is among theirs. So when the
outcomes of day D are published, day D's transactions are scored, as label delay orders them in
production; and the publisher waits for the worker at the end of every step, so it never runs
more than one step of event time ahead of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from streamlearn.foundation.clock import DAY_MS

WEEK_MS = 7 * DAY_MS


@dataclass(frozen=True)
class Step:
    """[start, end) of event time: transactions[txn_from:txn_to] and outcomes[out_from:out_to]
    (both sorted by time), then a retrain as of `end` if `retrain`."""

    start: int
    end: int
    txn_from: int
    txn_to: int
    out_from: int
    out_to: int
    retrain: bool
    # Some of the step's outcomes are of its own transactions (a label delay shorter than the
    # step): those transactions must be scored before the outcomes go.
    own_outcomes: bool = False


def labelled(ids: pd.Series, is_fraud: np.ndarray, legit_share: float, seed: int) -> np.ndarray:
    """Which transactions get an outcome: every fraud, and the legit ones whose id hashes below
    legit_share (a hash of the id and the seed: the same rows on every run, in any order)."""
    if legit_share >= 1.0:
        return np.ones(len(ids), dtype=bool)
    key = f"{seed:016d}"[-16:]
    hashed = pd.util.hash_pandas_object(ids.astype(str), index=False, hash_key=key).to_numpy()
    unit = hashed.astype(np.float64) / float(2**64)
    return np.asarray(is_fraud, dtype=bool) | (unit < legit_share)


def outcomes(
    frame: pd.DataFrame,
    *,
    label_delay_ms: int | None,
    legit_share: float,
    seed: int,
    wall_ms: int,
) -> tuple[pd.DataFrame, int]:
    """The outcomes to publish (transaction_id, is_fraud, event_time: when known, txn_time: its
    transaction's), sorted by when they became known, and how many are not due yet (known after
    wall_ms: not known today, so not published).

    With label_delay_ms an outcome is known that long after its transaction; without, at the
    file's outcome_time (0: the file dates no outcome for that row). Never before the
    transaction itself.
    """
    if label_delay_ms is not None:
        known = frame["event_time"].to_numpy() + label_delay_ms
        dated = np.ones(len(frame), dtype=bool)
    else:
        known = np.maximum(frame["outcome_time"].to_numpy(), frame["event_time"].to_numpy())
        dated = frame["outcome_time"].to_numpy() > 0
    chosen = dated & labelled(
        frame["transaction_id"], frame["is_fraud"].to_numpy(), legit_share, seed
    )
    out = pd.DataFrame(
        {
            "transaction_id": frame["transaction_id"].to_numpy()[chosen],
            "is_fraud": frame["is_fraud"].to_numpy()[chosen],
            "event_time": known[chosen].astype(np.int64),
            "txn_time": frame["event_time"].to_numpy()[chosen],
        }
    )
    out = out.sort_values("event_time", kind="stable").reset_index(drop=True)
    due = out["event_time"].to_numpy() <= wall_ms
    return out[due].reset_index(drop=True), int((~due).sum())


def origin(first_ms: int) -> int:
    """The UTC midnight starting the history's first day: steps and weeks are counted from it."""
    return first_ms // DAY_MS * DAY_MS


def scored_start(first_ms: int, warmup_ms: int) -> int:
    """Where the scored window starts: the warm-up after the history's first midnight."""
    return origin(first_ms) + warmup_ms


def retrain_points(first_ms: int, last_ms: int, warmup_ms: int, every_ms: int | None) -> list[int]:
    """When retrains run (event time): at the end of the warm-up (the first champion), then
    every every_ms, up to the last transaction. Without a warm-up the first is one period in."""
    start = scored_start(first_ms, warmup_ms)
    points = [start] if warmup_ms > 0 else []
    if every_ms:
        t = start + every_ms
        while t <= last_ms:
            points.append(t)
            t += every_ms
    return [t for t in points if first_ms < t <= last_ms]


def steps(
    txn_times: np.ndarray,
    outcome_times: np.ndarray,
    step_ms: int,
    retrains: list[int],
    outcome_txn_times: np.ndarray | None = None,
) -> list[Step]:
    """Cut event time into steps of step_ms from the first midnight (a retrain point also ends
    a step) until every transaction and outcome is in one; empty steps are left out.
    outcome_txn_times (each outcome's transaction time) marks the steps with own_outcomes."""
    if step_ms <= 0:
        raise ValueError("step_ms must be positive")
    if not len(txn_times):
        return []
    first = origin(int(txn_times[0]))
    last = int(max(txn_times[-1], outcome_times[-1] if len(outcome_times) else txn_times[-1]))
    n = (last - first) // step_ms + 1
    bounds = sorted({first + k * step_ms for k in range(n + 1)} | set(retrains))
    cuts_t = np.searchsorted(txn_times, bounds, side="left")
    cuts_o = np.searchsorted(outcome_times, bounds, side="left")
    due = set(retrains)
    out = []
    for i in range(len(bounds) - 1):
        step = Step(
            bounds[i],
            bounds[i + 1],
            int(cuts_t[i]),
            int(cuts_t[i + 1]),
            int(cuts_o[i]),
            int(cuts_o[i + 1]),
            bounds[i + 1] in due,
        )
        if outcome_txn_times is not None:
            theirs = outcome_txn_times[step.out_from : step.out_to]
            step = dataclasses.replace(step, own_outcomes=bool((theirs >= step.start).any()))
        if step.retrain or step.txn_to > step.txn_from or step.out_to > step.out_from:
            out.append(step)
    return out


def weeks(start_ms: int, last_ms: int) -> list[int]:
    """The starts of the scored window's event weeks (7 days from start_ms)."""
    return list(range(start_ms, last_ms + 1, WEEK_MS)) if last_ms >= start_ms else []
