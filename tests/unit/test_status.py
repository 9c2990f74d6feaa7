"""`streamlearn status` shows every /status figure, every online metric per scorer (AP and
daily alerts too), Kafka's reachability and the consumer lag per partition."""

from __future__ import annotations

from rich.console import Console

from streamlearn.learners.metrics import Scorecard
from streamlearn.tools.status import METRIC_COLUMNS, partition_lag, render_status


def status(worker: dict | None, **kafka: object) -> dict:
    return {
        "checked_at": "2026-03-01T12:00:00Z",
        "worker_url": "http://127.0.0.1:6066/status/",
        "worker": worker,
        "kafka": {"bootstrap": "k:9092", "reachable": True, "error": None, **kafka},
        "store": {"url": "chdb://x", "counts": {"transactions": 12345}, "error": None},
    }


def text_of(report: dict) -> str:
    console = Console(record=True, width=250)
    render_status(console, report)
    return console.export_text()


def test_online_metrics_table_has_ap_and_precision_among_daily_alerts() -> None:
    card = Scorecard()
    for i, (fraud, score) in enumerate([(True, 0.9), (False, 0.2), (False, 0.95), (True, 0.4)]):
        card.update(fraud, {"served": score, "lightgbm": score / 2}, i * 1000)
    text = text_of(status({"worker": "w1", "online_metrics": card.snapshot()}))
    for column in ("ap_rolling", "ap", "p_at_k_day", "p_at_k_day_rolling", "auc", "logloss"):
        assert column in METRIC_COLUMNS and column in text
    served = next(line for line in text.splitlines() if " served " in line)
    snap = card.snapshot()["served"]
    assert f"{snap['ap']:.4g}" in served and f"{snap['p_at_k_day']:.4g}" in served
    assert "top 50 scores" in text


def test_every_worker_figure_is_shown_even_new_ones() -> None:
    worker = {
        "worker": "w1",
        "uptime_s": 12.5,
        "models_refused": [["v2", "sha256 mismatch"]],
        "expired_outcomes": 3,
        "a_figure_added_later": "yes",
    }
    text = text_of(status(worker))
    for needle in ("uptime_s", "12.5", "v2; sha256 mismatch", "expired_outcomes", "later"):
        assert needle in text
    assert "12,345" in text  # store counts


def test_consumer_lag_and_reachability() -> None:
    lag = [
        {"topic": "transactions", "partition": 0, "committed": 90, "end": 100, "lag": 10},
        {"topic": "transactions", "partition": 1, "committed": None, "end": 7, "lag": 7},
    ]
    text = text_of(status(None, consumer_group="streamlearn", lag=lag, lag_total=17))
    assert "consumer lag of group streamlearn: 17" in text
    assert "none answered at http://127.0.0.1:6066/status/" in text
    down = text_of(status(None, reachable=False, error="did not answer within 5s"))
    assert "unreachable: did not answer within 5s" in down


def test_partition_lag_counts_from_the_commit_or_the_log_start() -> None:
    assert partition_lag(end=100, committed=90, start=0) == 10
    assert partition_lag(end=100, committed=None, start=40) == 60  # never committed
    assert partition_lag(end=100, committed=100, start=0) == 0
    assert partition_lag(end=50, committed=60, start=0) == 0  # a log truncated past the commit
