"""Measure detection quality on a generated handbook history: `python -m tests.quality.measure`.

Prints the weekly table of the backtest (served, champion, each learner, blend, offline
reference), then the offline studies: feature sets, and the training window (label maturity
and the held-out newest split). Figures go to the README and the report of issue 14.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from streamlearn.batch_retrain.gate import gate_config
from streamlearn.batch_retrain.train import train
from streamlearn.domain.features import CARD_WINDOWS, FEATURE_NAMES, MERCHANT_HISTORY
from tests.quality.handbook import DAY_MS, History, generate
from tests.quality.harness import backtest, features, training_set, week_metrics

NEW_MERCHANT = [n for n in MERCHANT_HISTORY if n[-1] == "d" and n[-2].isdigit()]
PLAIN_CARD = [f"card_{k}_{w}d" for k in ("n", "mean") for w in CARD_WINDOWS]
DECAYED_CARD = [
    n for n in FEATURE_NAMES if n.startswith(("card_count_", "card_amount_sum_", "card_amount_m"))
]
V1 = [n for n in FEATURE_NAMES if n not in NEW_MERCHANT and n not in PLAIN_CARD]
FEATURE_SETS = {
    "v1 (before)": V1,
    "v1 + merchant history": [n for n in FEATURE_NAMES if n not in PLAIN_CARD],
    "v1 + plain card windows": V1 + PLAIN_CARD,
    "v2 (both, beside the decayed)": list(FEATURE_NAMES),
    "v2, plain instead of decayed card": [n for n in FEATURE_NAMES if n not in DECAYED_CARD],
}


def row(label: str, ms: Sequence[dict[str, float]]) -> str:
    cells = " | ".join(f"{m['ap']:.3f} / {m['auc']:.3f} / {m['p_at_100']:.3f}" for m in ms)
    return f"| {label} | {cells} | {np.mean([m['ap'] for m in ms]):.3f} |"


def offline(h: History, X: np.ndarray, names: Sequence[str], day: int, **kw) -> dict[str, float]:
    """LightGBM trained at `day` (retrain code, arrays), scored on the following week."""
    t0 = int(h.event_ms.min()) // DAY_MS * DAY_MS
    as_of = t0 + day * DAY_MS
    result = train(training_set(X, h, as_of, names, **kw), num_threads=2)
    week = (h.event_ms >= as_of) & (h.event_ms < as_of + 7 * DAY_MS)
    cols = [FEATURE_NAMES.index(n) for n in names]
    score = result.booster.predict(X[week][:, cols], num_threads=2)
    return week_metrics(h.is_fraud[week].astype(np.int8), score, h.event_ms[week])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--customers", type=int, default=2500)
    ap.add_argument("--days", type=int, default=56)
    ap.add_argument("--start-day", type=int, default=28)
    ap.add_argument("--studies", action="store_true", help="also the offline studies")
    ap.add_argument("--gate-margin", type=float, default=0.0, help="as the quality test")
    args = ap.parse_args()
    h = generate(
        customers=args.customers, terminals=2 * args.customers, days=args.days, seed=args.seed
    )
    t = time.perf_counter()
    X = features(h)
    print(
        f"{len(h)} transactions, {h.is_fraud.mean():.4f} fraud, features "
        f"{time.perf_counter() - t:.1f} s"
    )
    t = time.perf_counter()
    gate = gate_config(margin=args.gate_margin)
    bt = backtest(h, X, start_day=args.start_day, refit=True, gate=gate)
    print(f"backtest {time.perf_counter() - t:.1f} s; retrains: " + "; ".join(bt.decisions))
    weeks = bt.weeks[:-1] if len(bt.weeks) > 1 and not bt.weeks[-1] else bt.weeks
    names = [
        n
        for n in ("served", "lightgbm", "river_lr", "river_hst", "blend", "reference")
        if all(n in w for w in weeks)
    ]
    print("\nAP / ROC AUC / precision top-100 per day, per scored week\n")
    print("| scorer | " + " | ".join(f"week {i + 1}" for i in range(len(weeks))) + " | mean AP |")
    print("|---|" + "---|" * (len(weeks) + 1))
    for n in names:
        print(row(n, [w[n] for w in weeks]))
    served = {s: int((bt.served_by == s).sum()) for s in set(bt.served_by.tolist())}
    print(f"\nserved by (transactions): {served}")
    if not args.studies:
        return
    days = list(range(args.start_day, args.days - 6, 7))
    print(f"\nOffline LightGBM per feature set, trained at days {days} on every mature row\n")
    for label, cols in FEATURE_SETS.items():
        print(row(label, [offline(h, X, cols, d, fractions=(0.85, 0.15, 0.0)) for d in days]))
    print("\nTraining window (v2 features)\n")
    oracle = dataclasses.replace(h, known_ms=np.where(h.is_fraud, h.event_ms, h.known_ms))
    studies = {
        "champion's: 7 d maturity, newest 15% held out": {},
        "7 d maturity, nothing held out": {"fractions": (0.85, 0.15, 0.0)},
        "labels known at once (no delay), nothing held out": {
            "fractions": (0.85, 0.15, 0.0),
            "maturity_days": 0.0,
            "h": oracle,
        },
    }
    for label, kw in studies.items():
        hh = kw.pop("h", h)
        print(row(label, [offline(hh, X, FEATURE_NAMES, d, **kw) for d in days]))


if __name__ == "__main__":
    main()
