"""Reading a replay's file: the column mapping, time and label parsing, rows set aside."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from streamlearn.foundation.errors import ConfigError
from streamlearn.tools.replay.source import (
    epoch_ms,
    labels,
    load,
    parse_duration,
    parse_mapping,
)

WALL = 1_767_225_600_000  # 2026-01-01T00:00Z
T0 = 1_522_540_800_000  # 2018-04-01T00:00Z
MAP = "transaction_id=TX_ID,card_id=CUSTOMER_ID,merchant_id=TERMINAL_ID,amount=TX_AMOUNT,"
MAP += "event_time=TX_DATETIME,is_fraud=TX_FRAUD"


def test_durations() -> None:
    assert parse_duration("7d", "--x") == 7 * 86_400_000
    assert parse_duration("36h", "--x") == 36 * 3_600_000
    assert parse_duration("2w", "--x") == 14 * 86_400_000
    assert parse_duration("90m", "--x") == 90 * 60_000
    assert parse_duration("1.5d", "--x") == 129_600_000
    assert parse_duration("30", "--x") == 30_000  # a bare number is seconds
    assert parse_duration("0", "--x") == 0
    with pytest.raises(ConfigError, match="--warmup takes a duration"):
        parse_duration("a week", "--warmup")


def test_mapping_names_fields_and_defaults_the_rest() -> None:
    mapping = parse_mapping("card_id=CUSTOMER_ID, amount = TX_AMOUNT,channel=CH")
    assert mapping["card_id"] == "CUSTOMER_ID" and mapping["amount"] == "TX_AMOUNT"
    assert mapping["channel"] == "CH"
    assert mapping["transaction_id"] == "transaction_id"  # unnamed: its own name
    assert parse_mapping("handbook")["transaction_id"] == "TRANSACTION_ID"
    assert parse_mapping(None)["event_time"] == "event_time"
    with pytest.raises(ConfigError, match="field=COLUMN"):
        parse_mapping("card_id")
    with pytest.raises(ConfigError, match="'colour' is not a Transaction field"):
        parse_mapping("colour=C")


def test_times_in_every_shape_come_out_as_epoch_ms() -> None:
    iso = pd.Series(["2018-04-01 00:00:31", "2018-04-01T00:00:31Z", "", "not a time"])
    assert epoch_ms(iso).tolist()[:2] == [T0 + 31_000, T0 + 31_000]
    assert epoch_ms(iso).isna().tolist() == [False, False, True, True]
    seconds = pd.Series([T0 / 1000, T0 / 1000 + 1.5])
    assert epoch_ms(seconds).tolist() == [T0, T0 + 1500]
    assert epoch_ms(pd.Series([T0, T0 + 7])).tolist() == [T0, T0 + 7]
    assert epoch_ms(pd.Series([str(T0)])).tolist() == [T0]  # text that is a number
    naive = pd.Series(pd.to_datetime(["2018-04-01 00:00:31"]))
    aware = naive.dt.tz_localize("Europe/Paris")  # 02:00 in Paris = midnight UTC
    assert epoch_ms(naive).tolist() == [T0 + 31_000]
    assert epoch_ms(aware).tolist() == [T0 + 31_000 - 2 * 3_600_000]


def test_labels() -> None:
    text = pd.Series(["1", "0", "TRUE", "false", "yes", "fraud", "legit", "maybe", None])
    assert labels(text).tolist() == [True, False, True, False, True, True, False, pd.NA, pd.NA]
    assert labels(pd.Series([1, 0, 2])).tolist() == [True, False, pd.NA]
    assert labels(pd.Series([True, False])).tolist() == [True, False]


def rows() -> pd.DataFrame:
    base = {
        "TX_ID": ["3", "1", "2", "4", "5", "6", "1", "7", "8"],
        "TX_DATETIME": [
            "2018-04-01 10:00:00",
            "2018-04-01 08:00:00",
            "2018-04-01 09:00:00",
            "yesterday",
            "2018-04-01 11:00:00",
            "2017-01-01 00:00:00",  # history: published first, so never "old"
            "2018-04-01 12:00:00",  # repeats TX_ID 1
            "2030-01-01 00:00:00",  # after the wall clock
            "2018-04-01 13:00:00",
        ],
        "CUSTOMER_ID": ["c1", "c2", "c1", "c1", "", "c3", "c1", "c1", "c 9"],
        "TERMINAL_ID": [10, 11, 12, 13, 14, 15, 16, 17, 18],
        "TX_AMOUNT": ["12.5", "3", "7.25", "1", "2", "4", "5", "6", "8"],
        "TX_FRAUD": ["0", "1", "0", "0", "0", "0", "0", "0", "0"],
    }
    return pd.DataFrame(base)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_load_maps_sorts_and_sets_aside_what_the_worker_would_refuse(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"history{suffix}"
    frame = rows()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    history = load(path, parse_mapping(MAP), outcome_time_column=None, wall_ms=WALL)
    out = history.frame
    assert history.rows_read == 9
    assert out["transaction_id"].tolist() == ["6", "1", "2", "3"]  # time order
    assert out["merchant_id"].tolist() == ["15", "11", "12", "10"]  # integers as text
    assert out["event_time"].tolist()[1:] == [T0 + h * 3_600_000 for h in (8, 9, 10)]
    assert out["is_fraud"].tolist() == [False, True, False, False]
    assert out["amount"].tolist() == [4.0, 3.0, 7.25, 12.5]
    assert history.refused == {
        "event_time is not a time": 1,
        "card_id is empty": 1,
        "transaction_id repeated (the first row is kept)": 1,
        "event_time N is more than N s in the future": 1,
        "card_id holds ' ': ids are visible ASCII characters ('!' to '~')": 1,
    }


def test_load_names_missing_columns_and_formats(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    rows().to_csv(path, index=False)
    with pytest.raises(ConfigError, match="no column amount, card_id, event_time"):
        load(path, parse_mapping(None), outcome_time_column=None, wall_ms=WALL)
    with pytest.raises(ConfigError, match="no column KNOWN_AT"):
        load(path, parse_mapping(MAP), outcome_time_column="KNOWN_AT", wall_ms=WALL)
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "absent.csv", parse_mapping(MAP), outcome_time_column=None, wall_ms=WALL)
    (tmp_path / "h.xlsx").write_text("x")
    with pytest.raises(ConfigError, match=r"\.csv or \.parquet"):
        load(tmp_path / "h.xlsx", parse_mapping(MAP), outcome_time_column=None, wall_ms=WALL)


def test_an_outcome_time_column_is_read_and_optional_fields_mapped(tmp_path: Path) -> None:
    frame = (
        rows()
        .iloc[:3]
        .assign(KNOWN=["2018-04-09 10:00:00", "", "2018-04-02 09:00:00"], CH=["pos", "", "ecom"])
    )
    path = tmp_path / "h.csv"
    frame.to_csv(path, index=False)
    history = load(
        path, parse_mapping(MAP + ",channel=CH"), outcome_time_column="KNOWN", wall_ms=WALL
    )
    out = history.frame
    assert out["outcome_time"].tolist() == [0, T0 + 33 * 3_600_000, T0 + (8 * 24 + 10) * 3_600_000]
    assert out["channel"].isna().tolist() == [True, False, False]
