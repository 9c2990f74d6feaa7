"""The report's charts on synthetic frames: each draws a PNG, empty input says what is missing,
and build_report turns a failing query into that chart's note."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from streamlearn.report import charts, queries
from streamlearn.report.build import build_report
from streamlearn.report.plotting import swaps

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T0 = pd.Timestamp("2026-03-01 12:00:00")


def minutes(n: int) -> pd.DatetimeIndex:
    return pd.date_range(T0, periods=n, freq="1min")


def online_metrics() -> pd.DataFrame:
    rows = []
    for t in minutes(60):
        for j, scorer in enumerate(("served", "lightgbm", "lr")):
            auc = 0.9 - 0.05 * j
            rows.append([t, scorer, 100, auc, auc - 0.4, auc - 0.3, 50])
    columns = ["minute", "scorer", "label_count", "auc_rolling", "ap_rolling"]
    return pd.DataFrame(rows, columns=[*columns, "p_at_k_day_rolling", "alerts_per_day"])


def drift_events() -> pd.DataFrame:
    times = [T0 + pd.Timedelta(minutes=m) for m in (20, 30, 40)]
    return pd.DataFrame(
        {
            "time": times,
            "kind": ["data", "concept", "score"],
            "subject": ["amount", "lightgbm", "served"],
            "statistic": [0.3, 0.2, 0.1],
            "threshold": [0.2, 0.01, 0.002],
            "model_version": ["v1", "v1", "v1"],
        }
    )


def served_versions() -> pd.DataFrame:
    versions = ["none"] * 10 + ["v1"] * 25 + ["v2"] * 25
    return pd.DataFrame({"minute": minutes(60), "model_version": versions, "transactions": 20})


def labelled(n: int = 600, fraud_rate: float = 0.1) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    fraud = rng.random(n) < fraud_rate
    score = np.where(fraud, rng.beta(5, 2, n), rng.beta(1, 8, n))
    return pd.DataFrame(
        {
            "model_version": np.where(np.arange(n) % 2, "v1", "v2"),
            "score": score,
            "model_score": score,
            "is_fraud": fraud,
        }
    )


def data_drift() -> pd.DataFrame:
    rows = [
        [T0 + pd.Timedelta(minutes=5 * k + i), f"f{i}", 0.2 + 0.1 * i + 0.01 * k, 0.2]
        for k in range(4)
        for i in range(11)
    ]
    return pd.DataFrame(rows, columns=["time", "feature", "psi", "threshold"])


def models() -> pd.DataFrame:
    t = [T0 + pd.Timedelta(minutes=m) for m in (0, 30, 50)]
    return pd.DataFrame(
        {
            "version": ["v1", "v2", "v3"],
            "status": ["retired", "champion", "rejected"],
            "created_at": t,
            "updated_at": [t[1], t[1], t[2] + pd.Timedelta(minutes=2)],
            "trigger": ["manual", "drift", "schedule"],
            "decision": ["promote: first model", "promote: ap 0.6 vs 0.5", "reject: ap 0.4"],
            "live_decision": ["", "", ""],
            "reason": ["replaced by v2", "promoted", "gate refused"],
            "first_served": [t[0] + pd.Timedelta(minutes=1), t[1], pd.NaT],
            "last_served": [t[1], t[2] + pd.Timedelta(minutes=9), pd.NaT],
        }
    )


def inference_cost() -> pd.DataFrame:
    frames = []
    for version, train in (("v1", 1.0), ("v2", 2.0), ("none", None)):
        cpu = np.cumsum(np.full(60, 0.05))
        frames.append(
            pd.DataFrame(
                {
                    "version": version,
                    "minute": minutes(60),
                    "cum_cpu_s": cpu,
                    "cum_predictions": np.cumsum(np.full(60, 1000)),
                    "train_cpu_s": train,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def dead_letters() -> pd.DataFrame:
    reasons = [f"validate: reason {k}" for k in range(8)]
    rows = [
        [T0 + pd.Timedelta(minutes=3 * k), "validate", reasons[k % 8], 1 + k % 3] for k in range(40)
    ]
    return pd.DataFrame(rows, columns=["minute", "stage", "reason", "letters"])


def throughput() -> pd.DataFrame:
    return pd.DataFrame(
        {"minute": minutes(60), "transactions": 1000, "lag_p50_ms": 40.0, "lag_p99_ms": 300.0}
    )


# Each chart function and the synthetic frames it draws from.
CASES: dict[str, tuple[Callable[..., charts.Chart], Callable[[], tuple[pd.DataFrame, ...]]]] = {
    "online-metrics": (
        charts.online_metrics_chart,
        lambda: (online_metrics(), drift_events(), served_versions()),
    ),
    "roc-pr": (charts.roc_pr_chart, lambda: (labelled(),)),
    "score-distribution": (charts.score_distribution_chart, lambda: (labelled(),)),
    "data-drift": (charts.data_drift_chart, lambda: (data_drift(),)),
    "model-lifecycle": (charts.lifecycle_chart, lambda: (models(),)),
    "inference-cost": (charts.cost_chart, lambda: (inference_cost(),)),
    "dead-letters": (charts.dead_letters_chart, lambda: (dead_letters(),)),
    "throughput": (charts.throughput_chart, lambda: (throughput(),)),
}


@pytest.mark.parametrize("slug", CASES)
def test_each_chart_draws_a_png_with_title_and_caption(slug):
    draw, frames = CASES[slug]
    chart = draw(*frames())
    assert chart.slug == slug and chart.title
    assert chart.png and chart.png.startswith(PNG_MAGIC) and len(chart.png) > 5000
    assert "streamlearn." in chart.caption  # says which table it came from


@pytest.mark.parametrize("slug", CASES)
@pytest.mark.parametrize(
    "empty",
    [pd.DataFrame(), None, pd.DataFrame({"unrelated": [1]})],
    ids=["column-less", "none", "wrong-columns"],
)
def test_empty_input_gives_a_missing_note_never_an_error(slug, empty):
    draw, frames = CASES[slug]
    chart = draw(*(empty for _ in frames()))
    assert chart.png is None
    assert chart.missing and "streamlearn." in chart.missing
    assert chart.slug == slug


def test_typed_but_empty_frames_are_missing_too():
    for slug, (draw, frames) in CASES.items():
        chart = draw(*(f.iloc[0:0] for f in frames()))
        assert chart.png is None and chart.missing, slug


def test_online_metrics_without_markers_still_draws():
    chart = charts.online_metrics_chart(online_metrics(), None, pd.DataFrame())
    assert chart.png and chart.missing is None


def test_curves_need_both_classes():
    one_class = labelled().assign(is_fraud=False)
    chart = charts.roc_pr_chart(one_class)
    assert chart.png is None and "one class" in chart.missing
    mixed = pd.concat([labelled(), one_class.assign(model_version="v9")], ignore_index=True)
    chart = charts.roc_pr_chart(mixed)
    assert chart.png and "v9" in chart.missing


def test_score_distribution_with_one_outcome_says_which_is_absent():
    chart = charts.score_distribution_chart(labelled().assign(is_fraud=False))
    assert chart.png and chart.missing == "no fraud outcomes in this window"


def test_gaps_in_what_is_recorded_are_named_beside_the_png():
    assert "not stored" in charts.throughput_chart(throughput()).missing
    assert "latest status only" in charts.lifecycle_chart(models()).missing
    assert "only detections" in charts.data_drift_chart(data_drift()).missing
    assert "none" in charts.cost_chart(inference_cost()).missing  # no training CPU for "none"


def test_swaps_are_where_the_served_version_changes():
    changes = swaps(served_versions())
    assert [v for _, v in changes] == ["v1", "v2"]
    assert changes[0][0] == T0 + pd.Timedelta(minutes=10)


def fake_store(fail: set[str]) -> Callable[[str, dict], pd.DataFrame]:
    """query_df answering each report query with synthetic frames; `fail` ones raise."""
    frames = {
        "range": pd.DataFrame(
            {
                "transactions": [3600],
                "first_scored": [T0],
                "last_scored": [T0 + pd.Timedelta(1, "h")],
            }
        ),
        "online_metrics": online_metrics(),
        "drift_events": drift_events(),
        "served_versions": served_versions(),
        "labelled_scores": labelled(),
        "data_drift": data_drift(),
        "models": models(),
        "inference_cost": inference_cost(),
        "dead_letters": dead_letters(),
        "throughput": throughput(),
    }
    by_sql = {sql: name for name, sql in queries.QUERIES.items()}

    def query_df(sql: str, params: dict) -> pd.DataFrame:
        name = by_sql[sql]
        assert set(params) == {k for k in ("since", "max_rows") if "{" + k + ":" in sql}
        if name in fail:
            raise RuntimeError(f"Code: 60. table for {name} is gone\nstack trace")
        return frames[name]

    return query_df


def test_build_report_isolates_a_failing_query(tmp_path):
    failing = {"data_drift", "served_versions"}
    since = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    path = build_report(fake_store(failing), tmp_path, since, "http://user:***@ch:8123")
    page = path.read_text()
    assert "http://user:***@ch:8123" in page and "2026-03-01 00:00:00 UTC to" in page
    assert "3,600 transactions scored" in page
    assert not (tmp_path / "data-drift.png").exists()
    assert "query data_drift failed: Code: 60. table for data_drift is gone" in page
    assert "stack trace" not in page
    # A marker query is optional: the online chart is drawn, and says what it lacks.
    assert (tmp_path / "online-metrics.png").stat().st_size > 0
    assert "query served_versions failed" in page
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == len(CASES) - 1


def test_a_rerun_removes_the_png_of_a_chart_now_missing(tmp_path):
    build_report(fake_store(set()), tmp_path, None, "chdb://x")
    assert (tmp_path / "dead-letters.png").exists()
    page = build_report(fake_store({"dead_letters"}), tmp_path, None, "chdb://x").read_text()
    assert not (tmp_path / "dead-letters.png").exists()
    assert "all history to" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from outside


def test_unusable_values_are_missing_not_errors():
    no_psi = data_drift().assign(psi=np.nan)
    assert charts.data_drift_chart(no_psi).missing.startswith("no finite PSI")
    no_scores = labelled().assign(score=np.nan)
    assert charts.score_distribution_chart(no_scores).png is None
    unknown = labelled().astype({"is_fraud": "object"})
    unknown.loc[:10, "is_fraud"] = None
    assert charts.roc_pr_chart(unknown).png
