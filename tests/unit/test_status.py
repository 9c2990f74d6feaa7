"""`streamlearn status` shows every online metric per scorer, including AP and daily alerts."""

from __future__ import annotations

from rich.console import Console

from streamlearn.learners.metrics import Scorecard
from streamlearn.tools.status import METRIC_COLUMNS, render_status


def test_online_metrics_table_has_ap_and_precision_among_daily_alerts() -> None:
    card = Scorecard()
    for i, (fraud, score) in enumerate([(True, 0.9), (False, 0.2), (False, 0.95), (True, 0.4)]):
        card.update(fraud, {"served": score, "lightgbm": score / 2}, i * 1000)
    console = Console(record=True, width=250)
    render_status(
        console,
        {
            "kafka": "k:9092",
            "store": "chdb://x",
            "worker": {"worker": "w1", "online_metrics": card.snapshot()},
            "store_counts": {},
        },
    )
    text = console.export_text()
    for column in ("ap_rolling", "ap", "p_at_k_day", "p_at_k_day_rolling", "auc", "logloss"):
        assert column in METRIC_COLUMNS and column in text
    served = next(line for line in text.splitlines() if " served " in line)
    snap = card.snapshot()["served"]
    assert f"{snap['ap']:.4g}" in served and f"{snap['p_at_k_day']:.4g}" in served
    assert "top 50 scores" in text
