"""`streamlearn replay` end to end on a generated history: 6 weeks of the handbook simulator's
payments (400 cards, 400 terminals, its three fraud patterns, compromises a little more frequent
than the handbook's so that 2 weeks of matured history train a first champion) through a worker
of the replay's own, outcomes 7 days after each payment (every fraud, 10% of legit), a 3-week
warm-up that trains the first champion, weekly retrains behind the gate; then the weekly table
per scorer beside the offline reference, and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from streamlearn.foundation.clock import DAY_MS
from streamlearn.foundation.kafka import admin
from streamlearn.foundation.settings import Settings
from streamlearn.tools.replay import ReplayOptions, ReplayProgress, run_replay
from streamlearn.tools.replay.source import parse_mapping
from streamlearn.tools.simulate.handbook import HandbookConfig, generate, write
from tests.conftest import free_port

DAYS, WARMUP_DAYS = 42, 21
SCORERS = {"served", "lightgbm", "blend", "river_lr", "river_hst", "reference"}


@pytest.mark.timeout(900)
def test_a_generated_history_replays_end_to_end(settings: Settings, tmp_path: Path) -> None:
    config = HandbookConfig(
        customers=400,
        terminals=400,
        days=DAYS,
        seed=11,
        terminals_per_day=0.15,
        customers_per_day=0.3,
    )
    history = generate(config)
    path = write(history, tmp_path / "history.parquet")
    options = ReplayOptions(
        file=path,
        mapping=parse_mapping("handbook"),
        out_dir=tmp_path / "out",
        label_delay_ms=7 * DAY_MS,
        legit_share=0.1,
        warmup_ms=WARMUP_DAYS * DAY_MS,
        retrain_every_ms=7 * DAY_MS,
        web_port=free_port(),
    )
    seen: list[ReplayProgress] = []
    summary = run_replay(
        settings.with_overrides(learners="lr,hst"),
        options,
        on_progress=lambda p: seen.append(ReplayProgress(**vars(p))),
    )
    print(f"\ntimings {summary['timings']}")
    print(summary["table"].to_string())

    # Everything was published, in event time, and accepted as history (no dead letter).
    frauds = int(history["TX_FRAUD"].sum())
    assert summary["transactions_published"] == len(history) == summary["worker"]["transactions"]
    legit_labelled = summary["outcomes_published"] - frauds
    assert 0.05 < legit_labelled / (len(history) - frauds) < 0.15
    assert summary["worker"]["outcomes"] == summary["outcomes_published"]
    assert not summary["worker"]["dead_letters"] and summary["rows_refused"] == {}
    times = [p.event_ms for p in seen if p.phase == "replaying"]
    assert times == sorted(times) and len(times) >= DAYS

    # The first champion at the end of the warm-up, then one retrain a week.
    retrains = summary["retrains"]
    start = history["TX_DATETIME"].iloc[0].normalize()
    expected = [start + pd.Timedelta(days=d) for d in (21, 28, 35)]
    assert [pd.Timestamp(r["as_of"] + 1, unit="ms") for r in retrains] == expected
    assert retrains[0]["status"] == "champion", retrains[0]
    assert {r["status"] for r in retrains} <= {"champion", "rejected"}, retrains

    # Every scored week has every scorer and the offline reference, measured on its labels.
    table = summary["table"]
    weeks = [w for w in dict.fromkeys(table["week"]) if w != "all"]
    assert weeks == [f"{t:%Y-%m-%d}" for t in expected]
    for week in weeks:
        rows = table[table["week"] == week].set_index("scorer")
        assert set(rows.index) == SCORERS, (week, set(rows.index))
        assert (rows["frauds"] > 0).all() and (rows["rows"] > 0).all(), rows
        assert np.isfinite(rows[["auc", "ap", "p_at_k"]].to_numpy()).all(), rows
        assert rows.loc["lightgbm", "coverage"] == 1.0  # a champion served all week
        assert rows.loc["reference", "coverage"] == 1.0
    assert not summary["loss"].empty

    # The files: the table as CSV and JSON, the report with the backtest chart first.
    files = summary["files"]
    csv = pd.read_csv(files["csv"])
    assert len(csv) == len(table) and set(csv["scorer"]) == SCORERS
    written = json.loads(Path(files["json"]).read_text())
    assert written["streaming_loss"] and len(written["weekly"]) == len(table)
    page = Path(files["report"]).read_text()
    assert page.index('id="backtest-weekly"') < page.index('id="online-metrics"')
    assert (options.out_dir / "backtest-weekly.png").stat().st_size > 10_000

    # It ran on its own topics, removed afterwards, and touched no other topic.
    topics = set(admin(settings).list_topics(timeout=10).topics)
    assert not [t for t in topics if t.startswith(f"{settings.topic_prefix}replay-")]
    assert settings.topic("transactions") not in topics
