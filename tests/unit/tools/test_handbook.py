"""The handbook simulator: seeded, the handbook's shape, and its three fraud patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from streamlearn.foundation.errors import ConfigError
from streamlearn.tools.replay.source import load, parse_mapping
from streamlearn.tools.simulate.handbook import (
    COLUMNS,
    HANDBOOK_START_MS,
    HandbookConfig,
    describe,
    generate,
    write,
)

SMALL = HandbookConfig(customers=300, terminals=300, days=40, seed=3)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return generate(SMALL)


def test_same_seed_same_history_other_seed_another(small: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(small, generate(SMALL))
    other = generate(HandbookConfig(customers=300, terminals=300, days=40, seed=4))
    assert len(other) != len(small) or not other["TX_AMOUNT"].equals(small["TX_AMOUNT"])


def test_the_handbook_shape(small: pd.DataFrame) -> None:
    assert tuple(small.columns) == COLUMNS
    assert small["TRANSACTION_ID"].tolist() == list(range(len(small)))
    assert small["TX_DATETIME"].is_monotonic_increasing
    assert small["TX_DATETIME"].iloc[0] >= pd.Timestamp(HANDBOOK_START_MS, unit="ms")
    assert small["TX_TIME_DAYS"].between(0, SMALL.days - 1).all()
    assert (small["TX_AMOUNT"] >= 0).all()
    seconds = (small["TX_DATETIME"] - pd.Timestamp(HANDBOOK_START_MS, unit="ms")).dt.total_seconds()
    assert (seconds.astype(np.int64) == small["TX_TIME_SECONDS"]).all()
    # About 2 payments a day per customer (uniform 0-4), minus times outside the day.
    per_day = len(small) / SMALL.customers / SMALL.days
    assert 1.6 < per_day < 2.1, per_day
    # Payments cluster around noon (N(noon, 20,000 s)).
    hours = small["TX_DATETIME"].dt.hour
    assert hours.between(8, 16).mean() > 0.5
    assert SMALL.reach == pytest.approx(5.0 * np.sqrt(10_000 / 300))


def test_the_three_fraud_patterns(small: pd.DataFrame) -> None:
    fraud = small[small["TX_FRAUD"] == 1]
    assert set(fraud["TX_FRAUD_SCENARIO"]) == {1, 2, 3}
    assert (small["TX_FRAUD"] == (small["TX_FRAUD_SCENARIO"] > 0)).all()
    assert 0.003 < len(fraud) / len(small) < 0.03
    # 1: amounts above the threshold (unless a later scenario took the row).
    s1 = small[small["TX_FRAUD_SCENARIO"] == 1]
    assert (s1["TX_AMOUNT"] > 220).all()
    assert (small.loc[small["TX_AMOUNT"] > 220, "TX_FRAUD"] == 1).all()
    # 2: a compromised terminal's payments are all fraud, for at most 28 days.
    s2 = small[small["TX_FRAUD_SCENARIO"] == 2]
    for terminal, rows in s2.groupby("TERMINAL_ID"):
        first, last = rows["TX_TIME_DAYS"].min(), rows["TX_TIME_DAYS"].max()
        assert last - first < 28, terminal  # one compromise each in this history
        window = small[
            (small["TERMINAL_ID"] == terminal) & small["TX_TIME_DAYS"].between(first, last)
        ]
        assert (window["TX_FRAUD"] == 1).all(), terminal
    # 3: about a third of a compromised card's payments, at inflated amounts.
    s3 = small[small["TX_FRAUD_SCENARIO"] == 3]
    assert len(s3) > 0
    usual = small[small["TX_FRAUD"] == 0].groupby("CUSTOMER_ID")["TX_AMOUNT"].median()
    ratio = (s3["TX_AMOUNT"] / s3["CUSTOMER_ID"].map(usual)).median()
    assert ratio > 3, ratio


def test_the_daily_compromise_rates_scale_with_the_population() -> None:
    assert HandbookConfig().terminal_rate == 2.0 and HandbookConfig().customer_rate == 3.0
    assert SMALL.terminal_rate == pytest.approx(0.06) and SMALL.customer_rate == pytest.approx(0.18)
    none = generate(
        HandbookConfig(
            customers=100, terminals=100, days=10, terminals_per_day=0, customers_per_day=0
        )
    )
    assert set(none["TX_FRAUD_SCENARIO"]) <= {0, 1}
    with pytest.raises(ConfigError):
        HandbookConfig(customers=0)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_written_files_replay_as_they_were_generated(
    small: pd.DataFrame, tmp_path: Path, suffix: str
) -> None:
    path = write(small, tmp_path / f"history{suffix}")
    history = load(path, parse_mapping("handbook"), outcome_time_column=None, wall_ms=2**62)
    out = history.frame
    assert history.refused == {} and len(out) == len(small)
    expected = (small["TX_DATETIME"] - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
    assert out["event_time"].tolist() == expected.tolist()
    assert out["is_fraud"].tolist() == (small["TX_FRAUD"] == 1).tolist()
    assert out["card_id"].tolist() == small["CUSTOMER_ID"].astype(str).tolist()
    assert "fraud (" in describe(small)
    with pytest.raises(ConfigError, match=r"\.csv or \.parquet"):
        write(small, tmp_path / "history.json")
