"""The training set, built inside ClickHouse: logged feature vectors joined with matured labels.

Point in time: the data clock `as_of` is the newest logged event time unless given (simulated
histories run on event time, not wall clock). A transaction counts once its label had time to
mature (event_time <= as_of - maturity); its label is its latest outcome known at as_of, and a
mature transaction without any outcome counts as legit (fraud is reported, legit mostly is
not). The rows are split by event time into train (oldest), validation and holdout (newest).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from streamlearn.domain.features import FEATURE_NAMES, FEATURE_VERSION
from streamlearn.foundation.clock import DAY_MS, DAY_S, utc
from streamlearn.foundation.errors import NotEnoughData
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore

DB = "streamlearn"
# Legit rows are kept when cityHash64(transaction_id) % SAMPLE_BUCKETS < keep: deterministic,
# so the same transaction is in or out on every retrain.
SAMPLE_BUCKETS = 1000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HINT = "run `streamlearn simulate --backfill-days 7`, or wait for more outcomes to mature"


@dataclass(frozen=True)
class Split:
    """One time slice: features X (rows x features), label y, sample weight w, event time (ms)."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    event_time: np.ndarray
    transaction_id: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return len(self.y)

    @property
    def positives(self) -> int:
        return int(self.y.sum())


@dataclass(frozen=True)
class TrainingSet:
    """The three splits and the clock they were cut with (all times epoch ms, UTC)."""

    feature_names: tuple[str, ...]
    train: Split
    valid: Split
    holdout: Split
    as_of: int
    cutoff: int
    # The window the model learned from (train + validation); the holdout follows it.
    train_start: int
    train_end: int
    holdout_start: int
    holdout_end: int
    # Counts before legit downsampling, and the weight a kept legit row carries.
    rows_available: int
    positives_available: int
    legit_weight: float
    build_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


class _Clock(NamedTuple):
    """The data clock, the maturity cutoff and the lookback start (epoch ms)."""

    as_of: int
    cutoff: int
    since: int | None
    maturity_ms: int


class _Totals(NamedTuple):
    """The mature rows before sampling: count, fraud, time range and split boundaries."""

    rows: int
    positives: int
    first: int | None
    last: int | None
    b1: int
    b2: int


class _Rows(NamedTuple):
    """The fetched rows, oldest first: features, label, split index, weight, time, ids."""

    X: np.ndarray
    y: np.ndarray
    split: np.ndarray
    w: np.ndarray
    et: np.ndarray
    ids: np.ndarray | None


def build_training_set(
    store: Store | RemoteStore,
    *,
    feature_names: Sequence[str] = FEATURE_NAMES,
    maturity_days: float = 7.0,
    maturity_s: float | None = None,
    as_of_ms: int | None = None,
    lookback_days: float | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    feature_version: str | None = FEATURE_VERSION,
    max_rows: int = 2_000_000,
    min_positives: int = 20,
    min_rows: int = 500,
    with_ids: bool = False,
) -> TrainingSet:
    """Query the store for the point-in-time training set; raise NotEnoughData if too small.

    maturity_s overrides maturity_days (tests, demos); lookback_days limits how far back
    before the cutoff rows are taken; feature_version None takes rows of every version. Over
    max_rows, legit rows are sampled in SQL and carry weight 1/rate so training and metrics
    stay unbiased. with_ids adds each split's transaction ids (slower; for tests and audits).
    """
    t0 = time.perf_counter()
    names = _check_names(feature_names)
    if len(fractions) != 3 or min(fractions) <= 0 or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three positive numbers summing to 1, not {fractions}")
    seconds = maturity_s if maturity_s is not None else maturity_days * DAY_S
    clock = _clock(store, round(seconds * 1000), as_of_ms, lookback_days)
    params: dict[str, Any] = {
        "as_of": clock.as_of,
        "cutoff": clock.cutoff,
        "since": clock.since if clock.since is not None else -(2**62),
        "fv": feature_version or "",
        "q1": fractions[0],
        "q2": fractions[0] + fractions[1],
    }
    mature = _mature_filter(feature_version is not None)
    totals = _totals(store, mature, params, clock, min_rows=min_rows, min_positives=min_positives)
    # Totals first: they decide how much legit to sample.
    keep = SAMPLE_BUCKETS
    if totals.rows > max_rows:
        legit = max(totals.rows - totals.positives, 1)
        keep = max(
            1, min(SAMPLE_BUCKETS, (SAMPLE_BUCKETS * (max_rows - totals.positives)) // legit)
        )
    legit_weight = SAMPLE_BUCKETS / keep
    params |= {"b1": totals.b1, "b2": totals.b2, "keep": keep, "lw": legit_weight}
    rows = _fetch(store, names, mature, params, with_ids=with_ids)
    return _assemble(names, rows, clock, totals, legit_weight, time.perf_counter() - t0)


def _clock(
    store: Store | RemoteStore, maturity_ms: int, as_of_ms: int | None, lookback_days: float | None
) -> _Clock:
    as_of = as_of_ms if as_of_ms is not None else data_clock(store)
    cutoff = as_of - maturity_ms
    since = cutoff - int(lookback_days * DAY_MS) if lookback_days is not None else None
    return _Clock(as_of, cutoff, since, maturity_ms)


def _totals(
    store: Store | RemoteStore,
    mature: str,
    params: dict[str, Any],
    clock: _Clock,
    *,
    min_rows: int,
    min_positives: int,
) -> _Totals:
    """Count the mature rows and find the split boundaries; NotEnoughData if too few."""
    fraud = fraud_ids_sql()
    _, stats = store.query_rows(
        f"""
        SELECT count() AS n, countIf(y) AS pos, min(et), max(et),
               quantilesExactLow({{q1:Float64}}, {{q2:Float64}})(et) AS bounds
        FROM (
            SELECT toUnixTimestamp64Milli(event_time) AS et, transaction_id IN ({fraud}) AS y
            FROM {DB}.transactions FINAL
            WHERE {mature}
        )""",
        params,
    )
    n, pos, first, last, bounds = stats[0]
    n, pos = int(n), int(pos)
    if n < max(min_rows, 1) or pos < min_positives:
        raise NotEnoughData(
            f"{n} mature transactions ({pos} fraud) up to {_iso(clock.cutoff)} (as of "
            f"{_iso(clock.as_of)}, maturity {clock.maturity_ms / DAY_MS:g} d); need >= "
            f"{min_rows} rows and >= {min_positives} fraud: {HINT}"
        )
    # Split by time: every row at a boundary's time goes to the earlier split, so rows with the
    # same event time never straddle two splits.
    return _Totals(n, pos, first, last, int(bounds[0]) + 1, int(bounds[1]) + 1)


def _fetch(
    store: Store | RemoteStore,
    names: tuple[str, ...],
    mature: str,
    params: dict[str, Any],
    *,
    with_ids: bool,
) -> _Rows:
    """The mature rows (fraud, and sampled legit) in time order, as numpy arrays."""
    columns = ",\n".join(
        f"if(mapContains(features, '{f}'), features['{f}'], nan) AS `{f}`" for f in names
    )
    ids = "transaction_id," if with_ids else ""
    table = store.query_arrow(
        f"""
        SELECT toUnixTimestamp64Milli(event_time) AS et,
               toUInt8(transaction_id IN ({fraud_ids_sql()})) AS y,
               multiIf(et < {{b1:Int64}}, 0, et < {{b2:Int64}}, 1, 2) AS split,
               if(y = 1, 1.0, {{lw:Float64}}) AS w,
               {ids}
               {columns}
        FROM {DB}.transactions FINAL
        WHERE {mature}
          AND (y = 1 OR cityHash64(transaction_id) % {SAMPLE_BUCKETS} < {{keep:UInt32}})
        ORDER BY et, transaction_id""",
        params,
    )
    X = np.empty((table.num_rows, len(names)), dtype=np.float64)
    for j, f in enumerate(names):
        X[:, j] = _np(table.column(f))
    return _Rows(
        X=X,
        y=_np(table.column("y")).astype(np.int8),
        split=_np(table.column("split")),
        w=_np(table.column("w")).astype(np.float64, copy=False),
        et=_np(table.column("et")).astype(np.int64, copy=False),
        ids=_np(table.column("transaction_id")) if with_ids else None,
    )


def _assemble(
    names: tuple[str, ...],
    rows: _Rows,
    clock: _Clock,
    totals: _Totals,
    legit_weight: float,
    build_s: float,
) -> TrainingSet:
    """Cut the rows into train, validation and holdout; NotEnoughData if one lacks a class."""
    # Rows come sorted by time and split is monotone in time, so each split is one slice.
    i1, i2 = int(np.searchsorted(rows.split, 1)), int(np.searchsorted(rows.split, 2))

    def part(a: int, b: int) -> Split:
        ids = rows.ids[a:b] if rows.ids is not None else None
        return Split(rows.X[a:b], rows.y[a:b], rows.w[a:b], rows.et[a:b], ids)

    splits = {"train": part(0, i1), "valid": part(i1, i2), "holdout": part(i2, len(rows.y))}
    counts = {"rows_available": totals.rows, "positives_available": totals.positives}
    for k, s in splits.items():
        counts |= {f"rows_{k}": s.rows, f"positives_{k}": s.positives}
        # Early stopping and every metric need both classes in each split.
        if s.positives == 0 or s.positives == s.rows:
            raise NotEnoughData(
                f"the {k} split ({s.rows} rows, {s.positives} fraud) lacks one class; mature "
                f"history {_iso(totals.first)}..{_iso(totals.last)}: {HINT}"
            )
    train, valid, holdout = splits["train"], splits["valid"], splits["holdout"]
    model_part = np.concatenate([train.event_time, valid.event_time])
    return TrainingSet(
        feature_names=names,
        train=train,
        valid=valid,
        holdout=holdout,
        as_of=clock.as_of,
        cutoff=clock.cutoff,
        train_start=int(model_part.min()),
        train_end=int(model_part.max()),
        holdout_start=int(holdout.event_time.min()),
        holdout_end=int(holdout.event_time.max()),
        rows_available=totals.rows,
        positives_available=totals.positives,
        legit_weight=legit_weight,
        build_s=build_s,
        counts=counts,
    )


def _check_names(feature_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(feature_names)
    if not names or len(set(names)) != len(names):
        raise ValueError("feature_names must be non-empty and without duplicates")
    # Names are spliced into SQL as literals and aliases, so only identifiers are allowed.
    bad = [f for f in names if not _NAME.match(f)]
    if bad:
        raise ValueError(f"feature names must be identifiers: {bad}")
    return names


def data_clock(store: Store | RemoteStore) -> int:
    """The newest logged event time (epoch ms): the clock of a simulated or replayed history."""
    _, rows = store.query_rows(
        f"SELECT count(), toUnixTimestamp64Milli(max(event_time)) FROM {DB}.transactions"
    )
    count, newest = rows[0]
    if not count:
        raise NotEnoughData(f"no transactions are logged in ClickHouse yet: {HINT}")
    return int(newest)


def _mature_filter(by_version: bool) -> str:
    version = " AND feature_version = {fv:String}" if by_version else ""
    return (
        "event_time <= fromUnixTimestamp64Milli({cutoff:Int64}, 'UTC')"
        " AND toUnixTimestamp64Milli(event_time) >= {since:Int64}" + version
    )


def fraud_ids_sql() -> str:
    """Transactions whose latest outcome known at as_of is fraud (ties in time: fraud wins)."""
    return f"""
        SELECT transaction_id FROM {DB}.outcomes FINAL
        WHERE event_time <= fromUnixTimestamp64Milli({{as_of:Int64}}, 'UTC')
        GROUP BY transaction_id
        HAVING argMax(is_fraud, (event_time, is_fraud))"""


def _np(column: Any) -> np.ndarray:
    """A pyarrow (chunked) column as numpy, zero-copy where arrow allows it."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        column = column.cast(pa.string())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(column.to_pylist(), dtype=object)
    return column.to_numpy(zero_copy_only=False)


def _iso(ms: int | None) -> str:
    return "-" if ms is None else utc(ms).strftime("%Y-%m-%dT%H:%M:%SZ")
