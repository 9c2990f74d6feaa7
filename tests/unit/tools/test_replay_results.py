"""A replay's weekly table: per event week and scorer, on the file's labels; the reference's
scores and the streaming loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from streamlearn.learners.ranking import precision_at_k_per_day
from streamlearn.report import backtest_chart
from streamlearn.tools.replay.reference import ReferenceModel
from streamlearn.tools.replay.results import (
    order_scorers,
    reference_scores,
    streaming_loss,
    weekly_table,
    with_labels,
)

DAY = 86_400_000
T0 = 1_522_540_800_000


def scored(weeks: int = 2, per_day: int = 40, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = weeks * 7 * per_day
    times = T0 + np.repeat(np.arange(weeks * 7), per_day) * DAY + rng.integers(0, DAY, n)
    y = rng.uniform(size=n) < 0.1
    good = np.clip(0.5 * y + rng.uniform(0, 0.6, n), 0, 1)
    champion = np.where(times < T0 + 3 * DAY, np.nan, good)  # no champion the first days
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "event_time": times,
            "served": good,
            "lightgbm": champion,
            "river_lr": rng.uniform(size=n),
            "is_fraud": y,
        }
    )


def test_scorers_are_ordered_served_first_reference_last() -> None:
    names = ["river_lr", "reference", "blend", "shadow", "served", "lightgbm", "river_hst"]
    assert order_scorers(names) == [
        "served",
        "lightgbm",
        "blend",
        "river_hst",
        "river_lr",
        "shadow",
        "reference",
    ]


def test_weekly_table_measures_each_scorer_on_the_rows_it_scored() -> None:
    rows = scored()
    table = weekly_table(rows, ["served", "lightgbm", "river_lr"], [T0, T0 + 7 * DAY], top_k=5)
    assert table["week"].tolist() == ["2018-04-01"] * 3 + ["2018-04-08"] * 3 + ["all"] * 3
    first = rows[rows["event_time"] < T0 + 7 * DAY]
    got = table.set_index(["week", "scorer"])
    y, s = first["is_fraud"].to_numpy(), first["served"].to_numpy()
    assert got.loc[("2018-04-01", "served"), "auc"] == pytest.approx(roc_auc_score(y, s))
    assert got.loc[("2018-04-01", "served"), "ap"] == pytest.approx(average_precision_score(y, s))
    p = precision_at_k_per_day(y, s, np.ones(len(y)), first["event_time"].to_numpy() // DAY, 5)
    assert got.loc[("2018-04-01", "served"), "p_at_k"] == pytest.approx(p)
    assert got.loc[("2018-04-01", "served"), "rows"] == len(first)
    assert got.loc[("2018-04-01", "served"), "frauds"] == int(y.sum())
    # The champion scored only from day 3: its rows and coverage say so.
    champion = got.loc[("2018-04-01", "lightgbm")]
    assert champion["rows"] == int(first["lightgbm"].notna().sum()) < len(first)
    assert champion["coverage"] == pytest.approx(4 / 7, abs=0.05)
    assert got.loc[("all", "served"), "rows"] == len(rows)
    assert (
        got.loc[("2018-04-01", "served"), "auc"] > 0.8 > got.loc[("2018-04-01", "river_lr"), "auc"]
    )


def test_a_week_without_rows_or_without_fraud_gives_no_figure_not_an_error() -> None:
    rows = scored(weeks=1).assign(is_fraud=False)
    table = weekly_table(rows, ["served", "absent"], [T0, T0 + 7 * DAY], top_k=5)
    week1 = table[table["week"] == "2018-04-01"].set_index("scorer")
    assert np.isnan(week1.loc["served", "auc"]) and week1.loc["served", "rows"] == len(rows)
    assert week1.loc["absent", "rows"] == 0 and np.isnan(week1.loc["absent", "ap"])
    week2 = table[table["week"] == "2018-04-08"].set_index("scorer")
    assert week2.loc["served", "rows"] == 0 and np.isnan(week2.loc["served", "coverage"])


def test_labels_come_from_the_file_and_unlabelled_rows_are_left_out() -> None:
    rows = scored(weeks=1).drop(columns="is_fraud")
    labels = pd.Series([True, False], index=["t0", "t1"])
    out = with_labels(rows, labels)
    assert out["transaction_id"].tolist() == ["t0", "t1"]
    assert out["is_fraud"].tolist() == [True, False]


class Constant:
    """A stand-in booster: predicts one value (which reference scored a row)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, X: np.ndarray, num_threads: int = 2) -> np.ndarray:
        assert X.shape[1] == 1
        return np.full(len(X), self.value)


def test_each_row_is_scored_by_the_newest_reference_trained_before_it() -> None:
    rows = pd.DataFrame(
        {
            "event_time": [T0 - 5, T0, T0 + 1, T0 + 7 * DAY, T0 + 7 * DAY + 1],
            "f:amount": [1.0] * 5,
        }
    )
    models = [
        ReferenceModel(T0 + 7 * DAY, Constant(0.7), ("amount",)),  # type: ignore[arg-type]
        ReferenceModel(T0, Constant(0.3), ("amount",)),  # type: ignore[arg-type]
    ]
    got = reference_scores(rows, models)
    assert np.isnan(got[:2]).all()  # up to the first as_of: no reference yet
    assert got[2:].tolist() == [0.3, 0.3, 0.7]
    assert np.isnan(reference_scores(rows, [ReferenceModel(T0, None, note="short")])).all()


def test_streaming_loss_and_the_chart() -> None:
    rows = scored()
    rows["reference"] = np.clip(rows["served"] + 0.3 * rows["is_fraud"], 0, 1)
    table = weekly_table(
        rows, order_scorers(["served", "reference", "river_lr"]), [T0, T0 + 7 * DAY], 5
    )
    loss = streaming_loss(table)
    assert loss.index.tolist() == ["2018-04-01", "2018-04-08", "all"]
    wide = table.set_index(["week", "scorer"])
    assert loss.loc["all", "ap"] == pytest.approx(
        wide.loc[("all", "reference"), "ap"] - wide.loc[("all", "served"), "ap"]
    )
    assert (loss["ap"] > 0).all()
    assert streaming_loss(table[table["scorer"] != "reference"]).empty
    chart = backtest_chart(table)
    assert chart.png and chart.png.startswith(b"\x89PNG") and chart.missing is None
    assert backtest_chart(pd.DataFrame()).missing == "no scored weeks in this replay"
