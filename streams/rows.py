"""A scored slice as `streamlearn.transactions` rows, column by column (built into Arrow off
the event loop, by the writer's store thread)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from streamlearn.domain.features import FEATURE_NAMES, FEATURE_VERSION
from streamlearn.foundation.store.tables import TRANSACTION_COLUMNS, arrow_table

_OPTIONAL = ("country", "merchant_category", "channel", "device_id")


@dataclass(slots=True)
class ScoredRows:
    """The rows of one scored slice: the events' fields, the feature matrix, every score."""

    partition: int
    txns: list[dict[str, Any]]
    offsets: list[int]
    matrix: np.ndarray  # (n, features) as scored
    score_names: list[str]
    score_matrix: np.ndarray  # (n, scorers), columns named by score_names
    served: np.ndarray
    river_name: str
    version: str
    shadow_version: str | None
    scored_at_ms: int

    def __len__(self) -> int:
        return len(self.txns)

    @property
    def txn_ids(self) -> list[str]:
        return [t["transaction_id"] for t in self.txns]


def _map(names: Sequence[str], values: np.ndarray) -> pa.MapArray:
    """One map per row with the same keys: built from flat arrays, no per-row Python."""
    n, k = values.shape
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    keys = pa.array(np.tile(np.asarray(names, dtype=object), n), type=pa.string())
    return pa.MapArray.from_arrays(offsets, keys, pa.array(values.ravel(), type=pa.float64()))


def _column(parts: Sequence[ScoredRows], name: str) -> list[Any]:
    return [t.get(name) for p in parts for t in p.txns]


def to_arrow(parts: Sequence[ScoredRows]) -> pa.Table:
    """Every part's rows as one Arrow table in TRANSACTION_COLUMNS order."""
    n_rows = [len(p) for p in parts]

    def each(value_of: Any) -> list[Any]:
        return [v for p, n in zip(parts, n_rows, strict=True) for v in [value_of(p)] * n]

    def scores_named(name: str) -> np.ndarray:
        out = []
        for p in parts:
            j = p.score_names.index(name) if name in p.score_names else -1
            out.append(p.score_matrix[:, j] if j >= 0 else np.full(len(p), np.nan))
        return np.concatenate(out)

    lgbm = scores_named("lightgbm")
    data = {
        "transaction_id": [t["transaction_id"] for p in parts for t in p.txns],
        "event_time": pa.array(_column(parts, "event_time"), type=pa.timestamp("ms", tz="UTC")),
        "card_id": _column(parts, "card_id"),
        "merchant_id": _column(parts, "merchant_id"),
        "amount": [float(a) for a in _column(parts, "amount")],
        "currency": [c or "" for c in _column(parts, "currency")],
        **{name: _column(parts, name) for name in _OPTIONAL},
        "feature_version": [FEATURE_VERSION] * sum(n_rows),
        "features": pa.concat_arrays([_map(FEATURE_NAMES, p.matrix) for p in parts]),
        "score": np.concatenate([p.served for p in parts]),
        "lightgbm_score": pa.array(lgbm, type=pa.float64(), from_pandas=True),
        "river_score": np.concatenate([scores_named_in(p, p.river_name) for p in parts]),
        "scores": pa.concat_arrays([_map(p.score_names, p.score_matrix) for p in parts]),
        "model_version": each(lambda p: p.version),
        "shadow_version": each(lambda p: p.shadow_version),
        "scored_at": pa.array(each(lambda p: p.scored_at_ms), type=pa.timestamp("ms", tz="UTC")),
        "source_partition": each(lambda p: p.partition),
        "source_offset": [o for p in parts for o in p.offsets],
    }
    return arrow_table(TRANSACTION_COLUMNS, data)


def scores_named_in(part: ScoredRows, name: str) -> np.ndarray:
    return part.score_matrix[:, part.score_names.index(name)]
