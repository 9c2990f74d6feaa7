"""The file `replay` reads: CSV or Parquet, its columns mapped onto the Transaction fields, times
and labels parsed, and the rows the worker would refuse set aside with the reason (counted,
never published, never dropped silently).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from streamlearn.foundation.errors import ConfigError, InvalidRecord
from streamlearn.streams.clock import EventClock
from streamlearn.streams.validate import check_transaction
from streamlearn.tools.simulate.handbook import HANDBOOK_MAP

IDS = ("transaction_id", "card_id", "merchant_id")
REQUIRED = (*IDS, "amount", "event_time", "is_fraud")
OPTIONAL = ("currency", "country", "merchant_category", "channel", "device_id")
PRESETS = {"handbook": HANDBOOK_MAP}
# Epoch numbers below this are seconds (up to the year 5138), above it milliseconds (from 1973).
SECONDS_BELOW = 1e11
TRUE = frozenset({"1", "true", "t", "yes", "y", "fraud"})
FALSE = frozenset({"0", "false", "f", "no", "n", "legit", "genuine"})
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?")
EPOCH = pd.Timestamp(0, tz="UTC")
UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


@dataclass(frozen=True)
class History:
    """The file's valid rows, oldest first: REQUIRED columns (event_time and outcome_time in
    epoch ms, outcome_time 0 when the file dates no outcome), and any mapped OPTIONAL ones."""

    frame: pd.DataFrame
    path: Path
    rows_read: int
    refused: dict[str, int] = field(default_factory=dict)  # reason -> rows set aside


def parse_duration(text: str, what: str) -> int:
    """ "7d", "12h", "90m", "2w", "500ms" (a bare number is seconds) as milliseconds."""
    match = DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ConfigError(f"{what} takes a duration such as 7d, 12h, 90m or 2w, not {text!r}")
    return round(float(match[1]) * UNIT_MS[match[2] or "s"])


def parse_mapping(text: str | None) -> dict[str, str]:
    """--map "field=COLUMN,..." (or a preset: handbook) as field -> column; a field not named
    is read from the column of its own name."""
    text = PRESETS.get((text or "").strip().lower(), text or "")
    mapping = {name: name for name in REQUIRED}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, column = (s.strip() for s in item.partition("="))
        if not sep or not column:
            raise ConfigError(f"--map takes field=COLUMN pairs separated by commas, not {item!r}")
        if name not in REQUIRED + OPTIONAL:
            known = ", ".join(REQUIRED + OPTIONAL)
            raise ConfigError(f"--map: {name!r} is not a Transaction field ({known}, is_fraud)")
        mapping[name] = column
    return mapping


def read_table(path: Path) -> pd.DataFrame:
    """The file as strings where it is text (CSV) or as typed (Parquet, read with pyarrow)."""
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path, engine="pyarrow")
    if suffix in (".csv", ".txt") or path.name.lower().endswith(".csv.gz"):
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    raise ConfigError(f"replay reads .csv or .parquet files, not {path.name!r}")


def load(
    path: Path, mapping: dict[str, str], *, outcome_time_column: str | None, wall_ms: int
) -> History:
    """Read, map and check the file; rows the worker would refuse are counted by reason."""
    raw = read_table(Path(path))
    wanted = {**mapping, **({"outcome_time": outcome_time_column} if outcome_time_column else {})}
    absent = sorted({c for c in wanted.values() if c not in raw.columns})
    if absent:
        raise ConfigError(
            f"{path} has no column {', '.join(absent)} (its columns: "
            f"{', '.join(map(str, raw.columns[:20]))}); map fields with --map field=COLUMN"
        )
    refused: Counter[str] = Counter()
    frame = pd.DataFrame(index=raw.index)
    for name in IDS:
        frame[name] = id_text(raw[mapping[name]])
    frame["amount"] = pd.to_numeric(raw[mapping["amount"]], errors="coerce").astype(float)
    frame["event_time"] = epoch_ms(raw[mapping["event_time"]])
    frame["is_fraud"] = labels(raw[mapping["is_fraud"]])
    frame["outcome_time"] = (
        epoch_ms(raw[outcome_time_column]) if outcome_time_column else pd.Series(pd.NA, raw.index)
    )
    for name in OPTIONAL:
        if name in mapping:
            frame[name] = id_text(raw[mapping[name]])
    frame = _unparsed(frame, refused)
    frame = frame.sort_values("event_time", kind="stable").reset_index(drop=True)
    duplicate = frame["transaction_id"].duplicated()
    if duplicate.any():
        refused["transaction_id repeated (the first row is kept)"] += int(duplicate.sum())
        frame = frame[~duplicate].reset_index(drop=True)
    frame = _as_the_worker_checks(frame, refused, wall_ms)
    return History(frame, Path(path), len(raw), dict(refused))


def _unparsed(frame: pd.DataFrame, refused: Counter[str]) -> pd.DataFrame:
    """Without the rows a required value could not be read from, each counted by reason."""
    bad = pd.Series(False, index=frame.index)
    for name, what in (
        *((n, f"{n} is empty") for n in IDS),
        ("amount", "amount is not a number"),
        ("event_time", "event_time is not a time"),
        ("is_fraud", "is_fraud is not a boolean (1/0, true/false, yes/no)"),
    ):
        missing = frame[name].isna() & ~bad
        if missing.any():
            refused[what] += int(missing.sum())
            bad |= missing
    out = frame[~bad].copy()
    out["event_time"] = out["event_time"].astype(np.int64)
    out["is_fraud"] = out["is_fraud"].astype(bool)
    out["outcome_time"] = out["outcome_time"].fillna(0).astype(np.int64)
    return out


def _as_the_worker_checks(frame: pd.DataFrame, refused: Counter[str], wall_ms: int) -> pd.DataFrame:
    """The rows the worker (STREAMLEARN_CLOCK=event) accepts, by its own rules, in time order;
    the worker's limits come from the defaults (400 days of age, 1 hour of future)."""
    from streamlearn.foundation.settings import Settings

    defaults = Settings.model_fields
    max_age_ms = int(defaults["max_event_age_days"].default) * 86_400_000
    max_future_ms = int(defaults["max_event_future_s"].default) * 1000
    clock = EventClock("event", max_future_ms)
    fields = [f for f in (*REQUIRED, *OPTIONAL) if f in frame.columns and f != "is_fraud"]
    keep = np.ones(len(frame), dtype=bool)
    for i, values in enumerate(frame[fields].itertuples(index=False, name=None)):
        record = {k: None if v is pd.NA else v for k, v in zip(fields, values, strict=True)}
        event_time = record["event_time"] = int(values[fields.index("event_time")])
        try:
            now = clock.now(0, event_time, wall_ms)
            check_transaction(record, now, max_age_ms, max_future_ms)
        except InvalidRecord as exc:
            refused[re.sub(r"-?\d[\d.e+-]*", "N", str(exc))] += 1
            keep[i] = False
    return frame[keep].reset_index(drop=True)


def id_text(column: pd.Series) -> pd.Series:
    """Ids and descriptive fields as text: integers without a trailing .0, blanks as NA."""
    if pd.api.types.is_float_dtype(column):
        whole = column.notna() & (column % 1 == 0)
        text = column.astype(object).where(~whole, column[whole].astype("Int64").astype(str))
        return text.where(column.notna(), pd.NA).astype("string")
    text = column.astype("string").str.strip()
    return text.mask(text == "", pd.NA)


def epoch_ms(column: pd.Series) -> pd.Series:
    """A time column as epoch ms (nullable): datetimes (naive ones are UTC), ISO text, or
    epoch numbers in seconds or milliseconds (told apart by magnitude, SECONDS_BELOW)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = pd.to_datetime(column, utc=True)
    else:
        numbers = pd.to_numeric(column, errors="coerce")
        if numbers.notna().sum() >= max(1, column.notna().sum() // 2):
            scale = 1000.0 if numbers.abs().median() < SECONDS_BELOW else 1.0
            return (numbers * scale).round().astype("Int64")
        stamps = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
    ms = (stamps - EPOCH) // pd.Timedelta(milliseconds=1)
    return ms.astype("Int64")


def labels(column: pd.Series) -> pd.Series:
    """is_fraud as a nullable boolean: booleans, 1/0, or words (TRUE, FALSE)."""
    if pd.api.types.is_bool_dtype(column):
        return column.astype("boolean")
    if pd.api.types.is_numeric_dtype(column):
        return column.map({1: True, 0: False}).astype("boolean")
    text = column.astype("string").str.strip().str.lower()
    return text.map(lambda v: True if v in TRUE else False if v in FALSE else pd.NA).astype(
        "boolean"
    )
