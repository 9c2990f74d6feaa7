"""A replay's results: every scored row of the scored window as served (ClickHouse), the
file's labels (all of them, not only the published outcomes), the offline reference's scores,
and per event week and scorer ROC AUC, average precision and precision among each day's top k.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from streamlearn.batch_retrain.metrics import evaluate
from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore
from streamlearn.tools.replay.reference import ReferenceModel
from streamlearn.tools.replay.schedule import WEEK_MS

SERVED, CHAMPION, BLEND, REFERENCE = "served", "lightgbm", "blend", "reference"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
METRICS = ("auc", "ap", "p_at_k")

SCORER_NAMES_SQL = """
SELECT DISTINCT arrayJoin(mapKeys(scores)) AS scorer
FROM streamlearn.transactions
WHERE event_time >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')
ORDER BY scorer
"""


def order_scorers(names: Sequence[str]) -> list[str]:
    """served, the champion, the blend, each learner, anything else, then the reference."""
    first = [n for n in (SERVED, CHAMPION, BLEND) if n in names]
    learners = sorted(n for n in names if n.startswith("river_"))
    rest = sorted(n for n in names if n not in first and n not in learners and n != REFERENCE)
    return first + learners + rest + ([REFERENCE] if REFERENCE in names else [])


def fetch_scored(store: Store | RemoteStore, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Every transaction scored in [start_ms, end_ms): id, event_time (ms), model_version, the
    served score, one column per component score (NaN where it did not score), and the
    features as logged (FEATURE_NAMES columns). Read a week at a time."""
    _, names = store.query_rows(SCORER_NAMES_SQL, {"start": start_ms})
    scorers = [str(r[0]) for r in names if IDENTIFIER.fullmatch(str(r[0])) and r[0] != SERVED]
    components = "".join(
        f",\n if(mapContains(scores, '{s}'), scores['{s}'], nan) AS `{s}`" for s in scorers
    )
    features = "".join(
        f",\n if(mapContains(features, '{f}'), features['{f}'], nan) AS `f:{f}`"
        for f in FEATURE_NAMES
    )
    sql = f"""
        SELECT transaction_id, toUnixTimestamp64Milli(event_time) AS et,
               model_version, score AS {SERVED}{components}{features}
        FROM streamlearn.transactions FINAL
        WHERE event_time >= fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC')
          AND event_time < fromUnixTimestamp64Milli({{hi:Int64}}, 'UTC')
        ORDER BY et, transaction_id"""
    parts = [
        store.query_arrow(sql, {"lo": lo, "hi": min(lo + WEEK_MS, end_ms)}).to_pandas()
        for lo in range(start_ms, end_ms, WEEK_MS)
    ]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if frame.empty:
        return frame
    frame = frame.rename(columns={"et": "event_time"})
    frame["transaction_id"] = frame["transaction_id"].astype(str)
    frame["model_version"] = frame["model_version"].astype(str)
    return frame


def feature_matrix(scored: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """The logged features of the scored rows, columns in `names` order."""
    return scored[[f"f:{n}" for n in names]].to_numpy(dtype=np.float64)


def reference_scores(scored: pd.DataFrame, models: Sequence[ReferenceModel]) -> np.ndarray:
    """Each row scored by the newest reference trained as of before its event time (rows up to
    the first reference's as_of stay NaN)."""
    out = np.full(len(scored), np.nan)
    times = scored["event_time"].to_numpy()
    models = sorted(models, key=lambda m: m.as_of)
    for i, model in enumerate(models):
        until = models[i + 1].as_of if i + 1 < len(models) else np.iinfo(np.int64).max
        at = (times > model.as_of) & (times <= until)
        if at.any() and model.booster is not None:
            out[at] = model.score(feature_matrix(scored[at], model.feature_names))
    return out


def with_labels(scored: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """The scored rows with is_fraud from the file (labels: transaction_id -> bool); rows the
    file does not label are left out."""
    y = scored["transaction_id"].map(labels)
    return scored[y.notna()].assign(is_fraud=y[y.notna()].astype(bool))


def weekly_table(
    scored: pd.DataFrame, scorers: Sequence[str], week_starts: Sequence[int], top_k: int
) -> pd.DataFrame:
    """One row per (event week, scorer), then the whole scored window (week "all"): rows the
    scorer scored, frauds among them, coverage of the week's rows, auc, ap, p_at_k (precision
    among each day's top_k scores, pooled over the days)."""
    rows = []
    times = scored["event_time"].to_numpy()
    spans = [(w, w + WEEK_MS) for w in week_starts]
    if week_starts:
        spans.append((week_starts[0], week_starts[-1] + WEEK_MS))
    for n, (lo, hi) in enumerate(spans):
        week = scored[(times >= lo) & (times < hi)]
        label = "all" if n == len(week_starts) else pd.Timestamp(lo, unit="ms").strftime("%Y-%m-%d")
        for scorer in scorers:
            rows.append(
                {"week": label, "week_start_ms": lo, "scorer": scorer}
                | _measure(week, scorer, top_k)
            )
    return pd.DataFrame(rows)


def _measure(week: pd.DataFrame, scorer: str, top_k: int) -> dict[str, float | int]:
    score = week[scorer].to_numpy(dtype=np.float64) if scorer in week else np.empty(0)
    have = np.isfinite(score)
    y = week["is_fraud"].to_numpy(dtype=np.int8)[have] if len(score) else np.empty(0, np.int8)
    out: dict[str, float | int] = {
        "rows": int(have.sum()),
        "frauds": int(y.sum()),
        "coverage": float(have.mean()) if len(have) else float("nan"),
    }
    if not len(y):
        return out | dict.fromkeys(METRICS, float("nan"))
    measured = evaluate(
        y, score[have], None, week["event_time"].to_numpy()[have], alerts_per_day=top_k
    )
    return out | {"auc": measured["auc"], "ap": measured["ap"], "p_at_k": measured["p_at_k_day"]}


def streaming_loss(table: pd.DataFrame) -> pd.DataFrame:
    """Per week: the reference's metric minus the served score's (positive: what streaming
    lost against a model trained offline on the same logged features)."""
    wide = table.pivot(index="week", columns="scorer", values=list(METRICS))
    if (REFERENCE not in table["scorer"].values) or (SERVED not in table["scorer"].values):
        return pd.DataFrame()
    out = pd.DataFrame({m: wide[(m, REFERENCE)] - wide[(m, SERVED)] for m in METRICS})
    order = list(dict.fromkeys(table["week"]))
    return out.reindex(order)
