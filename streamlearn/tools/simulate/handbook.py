"""Card-payment history with the three fraud patterns of public card-fraud datasets, as the
simulator of the "Reproducible Machine Learning for Credit Card Fraud Detection" handbook
(Le Borgne et al.) generates them, written to CSV or Parquet for `streamlearn replay`.

The model, seeded (numpy's PCG64: the same config and seed give the same file):
- customers at random points of a 100x100 grid, each with a mean amount (uniform 5-100, the
  standard deviation half of it) and a mean number of payments a day (uniform 0-4); terminals
  at random points; a customer pays at the terminals within `radius` of it;
- each day a customer makes Poisson(mean) payments at a time of day drawn from N(noon, 20,000 s)
  (times outside the day are dropped), of an amount drawn from N(mean, sd) (a negative draw
  is redrawn uniform in [0, 2 x mean]), at one of its terminals drawn uniformly;
- fraud, scenario 1: every amount above `amount_threshold` (220);
- scenario 2, compromised terminals: each day `terminals_per_day` terminals are drawn, and every
  payment at them in the next `terminal_days` (28) days is fraud;
- scenario 3, compromised cards: each day `customers_per_day` customers are drawn, and a third
  of their payments in the next `customer_days` (14) days are fraud, the amount times 5.

The handbook's sizes are the defaults (5,000 customers, 10,000 terminals, radius 5, 2 terminals
and 3 customers a day, from 2018-04-01). Smaller populations keep the same shape: the daily
compromise rates scale with the population (a fractional rate is a daily Bernoulli draw) and
the radius grows so that a customer keeps as many terminals in reach.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from streamlearn.foundation.clock import DAY_MS
from streamlearn.foundation.errors import ConfigError

HANDBOOK_START_MS = 1_522_540_800_000  # 2018-04-01T00:00Z, the handbook's first day
DAY_SECONDS = 86_400
GRID = 100.0
# The column mapping `streamlearn replay --map handbook` stands for.
HANDBOOK_MAP = (
    "transaction_id=TRANSACTION_ID,card_id=CUSTOMER_ID,merchant_id=TERMINAL_ID,"
    "amount=TX_AMOUNT,event_time=TX_DATETIME,is_fraud=TX_FRAUD"
)
COLUMNS = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)


@dataclass(frozen=True)
class HandbookConfig:
    """The simulator's knobs; None means "the handbook's value scaled to this population"."""

    customers: int = 5000
    terminals: int = 10000
    days: int = 183
    start_ms: int = HANDBOOK_START_MS
    seed: int = 0
    radius: float | None = None  # 5 at 10,000 terminals
    amount_threshold: float = 220.0
    terminals_per_day: float | None = None  # 2 per 10,000 terminals
    terminal_days: int = 28
    customers_per_day: float | None = None  # 3 per 5,000 customers
    customer_days: int = 14
    customer_share: float = 1 / 3
    amount_factor: float = 5.0

    def __post_init__(self) -> None:
        if self.customers < 1 or self.terminals < 1 or self.days < 1:
            raise ConfigError("the handbook simulator needs >= 1 customer, terminal and day")

    @property
    def reach(self) -> float:
        """The radius: the handbook's 5 at 10,000 terminals, as many terminals in reach else."""
        if self.radius is not None:
            return self.radius
        return min(GRID / 2, 5.0 * math.sqrt(10_000 / self.terminals))

    @property
    def terminal_rate(self) -> float:
        return (
            self.terminals_per_day
            if self.terminals_per_day is not None
            else (2.0 * self.terminals / 10_000)
        )

    @property
    def customer_rate(self) -> float:
        return (
            self.customers_per_day
            if self.customers_per_day is not None
            else (3.0 * self.customers / 5_000)
        )


def generate(config: HandbookConfig) -> pd.DataFrame:
    """The history as a frame with the handbook's columns (COLUMNS), in time order."""
    rng = np.random.default_rng(config.seed)
    mean_amount, daily_rate, reach = _customers(rng, config)
    day, second, customer, terminal, amount = _payments(rng, config, mean_amount, daily_rate, reach)
    order = np.lexsort((customer, second, day))
    day, second, customer, terminal, amount = (
        a[order] for a in (day, second, customer, terminal, amount)
    )
    scenario = np.where(amount > config.amount_threshold, 1, 0).astype(np.int8)
    _compromise_terminals(rng, config, day, terminal, scenario)
    _compromise_cards(rng, config, day, customer, amount, scenario)
    seconds = day.astype(np.int64) * DAY_SECONDS + second
    return pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(len(day), dtype=np.int64),
            "TX_DATETIME": pd.to_datetime(config.start_ms + seconds * 1000, unit="ms"),
            "CUSTOMER_ID": customer,
            "TERMINAL_ID": terminal,
            "TX_AMOUNT": np.round(amount, 2),
            "TX_TIME_SECONDS": seconds,
            "TX_TIME_DAYS": day.astype(np.int64),
            "TX_FRAUD": (scenario > 0).astype(np.int8),
            "TX_FRAUD_SCENARIO": scenario,
        },
        columns=list(COLUMNS),
    )


def _customers(
    rng: np.random.Generator, config: HandbookConfig
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Each customer's mean amount, payments a day, and the terminals in its reach."""
    where = rng.uniform(0, GRID, size=(config.customers, 2))
    mean_amount = rng.uniform(5, 100, size=config.customers)
    daily_rate = rng.uniform(0, 4, size=config.customers)
    terminals = rng.uniform(0, GRID, size=(config.terminals, 2))
    reach: list[np.ndarray] = []
    limit = config.reach**2
    for lo in range(0, config.customers, 512):  # bounded memory: 512 x terminals distances
        d2 = ((where[lo : lo + 512, None, :] - terminals[None, :, :]) ** 2).sum(axis=2)
        reach += [np.flatnonzero(row < limit) for row in d2]
    return mean_amount, daily_rate, reach


def _payments(
    rng: np.random.Generator,
    config: HandbookConfig,
    mean_amount: np.ndarray,
    daily_rate: np.ndarray,
    reach: list[np.ndarray],
) -> tuple[np.ndarray, ...]:
    """(day, second of day, customer, terminal, amount) of every payment, unordered."""
    counts = rng.poisson(daily_rate, size=(config.days, config.customers)).ravel()
    customer = np.repeat(np.tile(np.arange(config.customers), config.days), counts)
    day = np.repeat(np.repeat(np.arange(config.days), config.customers), counts)
    second = rng.normal(DAY_SECONDS / 2, 20_000, size=len(day))
    mean = mean_amount[customer]
    amount = rng.normal(mean, mean / 2)
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean[negative])
    sizes = np.array([len(r) for r in reach], dtype=np.int64)[customer]
    pick = np.floor(rng.uniform(size=len(day)) * sizes).astype(np.int64)
    flat = np.concatenate([*reach, np.zeros(1, dtype=np.int64)])
    starts = np.concatenate([[0], np.cumsum([len(r) for r in reach])])[customer]
    terminal = flat[starts + pick]
    keep = (second > 0) & (second < DAY_SECONDS) & (sizes > 0)
    return (
        day[keep],
        second[keep].astype(np.int64),
        customer[keep],
        terminal[keep],
        amount[keep],
    )


def _daily_draws(rng: np.random.Generator, rate: float, population: int, days: int) -> list:
    """For each day, who is compromised: floor(rate) draws plus one with the fraction's odds."""
    whole, frac = int(rate), rate - int(rate)
    out = []
    for _ in range(days):
        k = min(population, whole + int(rng.uniform() < frac))
        out.append(rng.choice(population, size=k, replace=False) if k else np.empty(0, np.int64))
    return out


def _compromise_terminals(
    rng: np.random.Generator,
    config: HandbookConfig,
    day: np.ndarray,
    terminal: np.ndarray,
    scenario: np.ndarray,
) -> None:
    """Scenario 2: every payment at a compromised terminal for terminal_days is fraud."""
    draws = _daily_draws(rng, config.terminal_rate, config.terminals, config.days)
    for rows in _compromised(draws, terminal, day, config.terminal_days):
        scenario[rows] = 2


def _compromise_cards(
    rng: np.random.Generator,
    config: HandbookConfig,
    day: np.ndarray,
    customer: np.ndarray,
    amount: np.ndarray,
    scenario: np.ndarray,
) -> None:
    """Scenario 3: a share of a compromised card's payments for customer_days are fraud at
    amount_factor times the amount."""
    draws = _daily_draws(rng, config.customer_rate, config.customers, config.days)
    for rows in _compromised(draws, customer, day, config.customer_days):
        n = int(len(rows) * config.customer_share)
        if n:
            hit = rng.choice(rows, size=n, replace=False)
            amount[hit] *= config.amount_factor
            scenario[hit] = 3


def _compromised(
    draws: list, key: np.ndarray, day: np.ndarray, window_days: int
) -> Iterator[np.ndarray]:
    """Per day d and key drawn that day (a terminal, a card): the rows of that key's payments
    on days d to d + window_days - 1."""
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    for d, chosen in enumerate(draws):
        for k in chosen:
            lo, hi = np.searchsorted(sorted_key, [k, k + 1])
            rows = order[lo:hi]
            yield rows[(day[rows] >= d) & (day[rows] < d + window_days)]


def write(frame: pd.DataFrame, path: Path) -> Path:
    """CSV (TX_DATETIME as "YYYY-MM-DD HH:MM:SS", UTC) or Parquet (.parquet), by the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    elif path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    else:
        raise ConfigError(f"write the history as .csv or .parquet, not {path.name!r}")
    return path


def describe(frame: pd.DataFrame) -> str:
    """One line: rows, days, fraud by scenario."""
    if frame.empty:
        return "no payments (too few customers or days)"
    by = frame["TX_FRAUD_SCENARIO"].value_counts().to_dict()
    first, last = frame["TX_DATETIME"].iloc[0], frame["TX_DATETIME"].iloc[-1]
    frauds = int(frame["TX_FRAUD"].sum())
    return (
        f"{len(frame):,} payments of {frame['CUSTOMER_ID'].nunique():,} customers at "
        f"{frame['TERMINAL_ID'].nunique():,} terminals, {first:%Y-%m-%d} to {last:%Y-%m-%d}; "
        f"{frauds:,} fraud ({frauds / len(frame):.2%}): amount {by.get(1, 0):,}, "
        f"compromised terminals {by.get(2, 0):,}, compromised cards {by.get(3, 0):,}"
    )


def days_of(frame: pd.DataFrame) -> float:
    """Days of event time the history spans."""
    span = frame["TX_DATETIME"].iloc[-1] - frame["TX_DATETIME"].iloc[0]
    return span / pd.Timedelta(milliseconds=DAY_MS)
