"""An in-process backtest of a generated history through the worker's own parts, no broker.

Features come from `domain.features.compute` with the worker's `MerchantRisk`, outcomes
counted as they become known in event time and transactions as they are scored. Scoring
follows the worker's slices: the champion (a LightGBM trained by `batch_retrain.train` on the
matured rows at each weekly retrain point and judged by `batch_retrain.gate`), the learners'
`ScoringSnapshot`, the served source it picks; outcomes reach the `LearnerSet` when known.
The offline reference is the same training code on every matured row at each retrain point,
scored offline on the next week. Kafka, ClickHouse and Faust are left out: the quality of what
is served depends on these parts only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from streamlearn.batch_retrain.gate import DEFAULT_GATE, GateConfig, judge
from streamlearn.batch_retrain.metrics import evaluate, paired_gain_se
from streamlearn.batch_retrain.train import refit_on_every_row, train
from streamlearn.batch_retrain.training_set import Split, TrainingSet
from streamlearn.domain.features import FEATURE_NAMES, compute
from streamlearn.learners.learner_set import CHAMPION, LearnerSet, ScoredBatch
from streamlearn.learners.ranking import precision_at_k_per_day
from streamlearn.streams.merchant_risk import MerchantRisk
from tests.quality.handbook import DAY_MS, History

SLICE = 200  # transactions scored together, as the worker's slices
SNAPSHOT_LABELS = 200  # the learning thread's snapshot cadence
TOP_K = 100  # alerts per day for precision


def features(h: History, maturity_days: float = 7.0) -> np.ndarray:
    """Every transaction's feature vector, computed in event-time order as the worker does."""
    risk = MerchantRisk(maturity_days)
    cards: dict[str, object] = {}
    merchants: dict[str, object] = {}
    labeled = np.nonzero(h.known_ms >= 0)[0]
    order = labeled[np.argsort(h.known_ms[labeled], kind="stable")]
    j = 0
    rows = np.empty((len(h), len(FEATURE_NAMES)))
    for i in range(len(h)):
        t = int(h.event_ms[i])
        while j < len(order) and h.known_ms[order[j]] <= t:
            k = order[j]
            risk.add(f"T{h.terminal[k]}", int(h.known_ms[k]), bool(h.is_fraud[k]))
            j += 1
        txn = h.txn(i)
        m = txn["merchant_id"]
        vec, cards[txn["card_id"]], merchants[m] = compute(  # type: ignore[assignment]
            txn,
            cards.get(txn["card_id"]),
            merchants.get(m),
            risk.rate(m, t),  # type: ignore[arg-type]
        )
        risk.scored(m, t)
        rows[i] = vec
    return rows


def training_set(
    X: np.ndarray,
    h: History,
    as_of: int,
    names: Sequence[str],
    *,
    maturity_days: float = 7.0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    columns: Sequence[str] = FEATURE_NAMES,
) -> TrainingSet:
    """build_training_set's rows from arrays: mature rows, labels known at as_of, time splits
    (fractions[2] == 0: validation doubles as holdout, every mature row is learned from)."""
    cutoff = as_of - int(maturity_days * DAY_MS)
    rows = np.nonzero(h.event_ms <= cutoff)[0]
    y = (h.is_fraud[rows] & (h.known_ms[rows] >= 0) & (h.known_ms[rows] <= as_of)).astype(np.int8)
    et = h.event_ms[rows]
    q1, q2 = np.quantile(et, [fractions[0], fractions[0] + fractions[1]], method="lower")
    cols = [list(columns).index(n) for n in names]
    Xr = X[rows][:, cols]

    def part(mask: np.ndarray) -> Split:
        return Split(Xr[mask], y[mask], np.ones(int(mask.sum())), et[mask])

    train_p = part(et <= q1)
    valid = part((et > q1) & (et <= q2)) if fractions[2] else part(et > q1)
    holdout = part(et > q2) if fractions[2] else valid
    return TrainingSet(
        tuple(names),
        train_p,
        valid,
        holdout,
        as_of,
        cutoff,
        int(et.min()),
        int(valid.event_time.max()),
        int(holdout.event_time.min()),
        int(holdout.event_time.max()),
        len(rows),
        int(y.sum()),
        1.0,
    )


def week_metrics(y: np.ndarray, score: np.ndarray, event_ms: np.ndarray) -> dict[str, float]:
    """ROC AUC, average precision and precision among each day's TOP_K highest scores."""
    m = evaluate(y, score)
    days = event_ms // DAY_MS
    p = precision_at_k_per_day(y, score, np.ones(len(y)), days, TOP_K)
    return {"auc": m["auc"], "ap": m["ap"], "p_at_100": p}


@dataclass
class Backtest:
    """Scores of every transaction per scorer, the retrain decisions, the weekly figures."""

    scores: dict[str, np.ndarray]
    served_by: np.ndarray  # the source served, per transaction
    decisions: list[str] = field(default_factory=list)
    weeks: list[dict[str, dict[str, float]]] = field(default_factory=list)


def backtest(
    h: History,
    X: np.ndarray,
    *,
    start_day: int,
    retrain_every_days: int = 7,
    names: Sequence[str] = FEATURE_NAMES,
    learners: str = "lr,hst",
    maturity_days: float = 7.0,
    refit: bool = False,
    gate: GateConfig = DEFAULT_GATE,
) -> Backtest:
    """Replay the scoring from day 0 (the warm-up before start_day is scored, not counted);
    the first champion is trained at start_day, then every retrain_every_days."""
    t0 = int(h.event_ms.min()) // DAY_MS * DAY_MS
    points = list(range(start_day, int((h.event_ms.max() - t0) // DAY_MS) + 1, retrain_every_days))
    cols = np.array([FEATURE_NAMES.index(n) for n in names])
    ls = LearnerSet(learners, FEATURE_NAMES)
    snap = ls.snapshot()
    names_out: list[str] = []
    scores: dict[str, np.ndarray] = {}
    served_by = np.empty(len(h), dtype=object)
    reference = np.full(len(h), np.nan)
    labeled = np.nonzero(h.known_ms >= 0)[0]
    outcome_order = labeled[np.argsort(h.known_ms[labeled], kind="stable")]
    j = since_snap = 0
    champion = None
    out = Backtest(scores, served_by)
    bounds = [t0 + p * DAY_MS for p in points] + [int(h.event_ms.max()) + 1]
    i = 0
    next_point = 0
    while i < len(h):
        t = int(h.event_ms[i])
        if next_point < len(points) and t >= bounds[next_point]:
            as_of = bounds[next_point]
            champion = _retrain(X, h, as_of, names, champion, out, maturity_days, refit, gate)
            ref = reference_model(X, h, as_of, names, maturity_days, refit)
            week = (h.event_ms >= as_of) & (h.event_ms < bounds[next_point + 1])
            reference[week] = ref.booster.predict(X[week][:, cols], num_threads=2)
            next_point += 1
        end = min(i + SLICE, len(h))
        if next_point < len(bounds):
            end = min(end, int(np.searchsorted(h.event_ms, bounds[next_point])) or end)
        end = max(end, i + 1)
        # Outcomes known by the slice's first event reach the learners first.
        while j < len(outcome_order) and h.known_ms[outcome_order[j]] <= t:
            k = outcome_order[j]
            row = {n: float(scores[n][k]) for n in names_out if not math.isnan(scores[n][k])}
            ls.learn(str(h.txn_id[k]), X[k], row, bool(h.is_fraud[k]), t, int(h.event_ms[k]))
            j += 1
            since_snap += 1
            if since_snap >= SNAPSHOT_LABELS:
                snap, since_snap = ls.snapshot(), 0
        matrix = X[i:end]
        lgbm = champion.predict(matrix[:, cols], num_threads=1) if champion else None
        columns, served, source = snap.score(matrix, lgbm)
        for n, v in {**columns, "served": served}.items():
            if n not in scores:
                scores[n] = np.full(len(h), np.nan)
                names_out.append(n)
            scores[n][i:end] = v
        served_by[i:end] = source
        # The worker's champion version: a swap makes the blend guard compare afresh.
        version = f"v{id(champion)}" if champion else "none"
        ls.observe(ScoredBatch(matrix, served, source, t, version))
        i = end
    scores["reference"] = reference
    for a, b in pairwise(bounds):
        week = (h.event_ms >= a) & (h.event_ms < b)
        y = h.is_fraud[week].astype(np.int8)
        out.weeks.append(
            {
                n: week_metrics(y, s[week], h.event_ms[week])
                for n, s in scores.items()
                if not np.isnan(s[week]).any()
            }
        )
    return out


def _retrain(X, h, as_of, names, champion, out, maturity_days, refit, gate):  # type: ignore[no-untyped-def]
    """A candidate on the mature rows, judged against the champion on its holdout as
    run_retrain judges it (refit: the chosen rounds on train and validation; the gate weighs
    the paired bootstrap noise), and refit on every row when promoted."""
    ts = training_set(X, h, as_of, names, maturity_days=maturity_days)
    result = train(ts, num_threads=2)
    if refit:
        result = refit_on_every_row(ts, result, holdout=False)
    theirs, noise = None, None
    if champion is not None:
        hx = ts.holdout
        ours, champ = result.booster.predict(hx.X), champion.predict(hx.X)
        m = evaluate(hx.y, champ, hx.w, hx.event_time)
        theirs = {f"holdout_{k}": v for k, v in m.items()}
        mine = evaluate(hx.y, ours, hx.w, hx.event_time)
        result = dataclasses.replace(
            result, metrics={**result.metrics, **{f"holdout_{k}": v for k, v in mine.items()}}
        )
        noise = paired_gain_se(hx.y, ours, champ, hx.w)
    rows = len(ts.holdout.y) if champion is not None else 0
    decision = judge(result.metrics, theirs, config=gate, noise=noise, compared_rows=rows)
    out.decisions.append(f"day {(as_of // DAY_MS)}: {decision.reason}")
    if not decision.promote:
        return champion
    return refit_on_every_row(ts, result).booster if refit else result.booster


def reference_model(X, h, as_of, names, maturity_days, refit=False):  # type: ignore[no-untyped-def]
    """The offline reference: the retrain's own training at the retrain point, no gate, no
    streaming; refit=True also refits it on every row, as wt-replay's reference does."""
    if not refit:
        ts = training_set(X, h, as_of, names, maturity_days=maturity_days)
        return train(ts, num_threads=2)
    ts = training_set(X, h, as_of, names, maturity_days=maturity_days, fractions=(0.85, 0.1, 0.05))
    return refit_on_every_row(ts, train(ts, num_threads=2))


__all__ = ["CHAMPION", "Backtest", "backtest", "features", "training_set", "week_metrics"]
