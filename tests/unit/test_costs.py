"""Inference cost: the worker's meter, its rows in model_usage, and the cost query."""

from __future__ import annotations

import asyncio
import datetime as dt
import math

import pandas as pd
import pytest

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.costs import model_costs
from streamlearn.foundation.store import Store
from streamlearn.streams.stats import WorkerStats
from streamlearn.streams.usage import COLUMNS, TABLE, UsageMeter, flush_usage

T0 = dt.datetime(2026, 3, 1, 12, 0, 30, tzinfo=dt.UTC)


def test_the_meter_writes_only_what_each_version_gained():
    stats, meter = WorkerStats(), UsageMeter("w1")
    stats.record_inference("v1", 0.5, 1000)
    stats.record_inference("v1", 0.25, 500)
    stats.record_inference("v2", 0.125, 500)
    rows = meter.rows(stats, T0)
    minute = T0.replace(second=0)
    assert rows == [[minute, "w1", "v1", 1500, 0.75], [minute, "w1", "v2", 500, 0.125]]
    assert meter.rows(stats, T0) == rows  # not committed yet: written again on retry
    meter.commit(rows)
    assert meter.rows(stats, T0) == []
    stats.record_inference("v2", 0.5, 100)
    assert meter.rows(stats, T0) == [[minute, "w1", "v2", 100, 0.5]]
    assert meter.token(rows) != meter.token(meter.rows(stats, T0))


class FakeSink:
    def __init__(self) -> None:
        self.inserts: list[tuple] = []

    async def insert(self, table, rows, columns, token) -> None:
        self.inserts.append((table, rows, columns, token))


def test_flush_usage_inserts_then_counts_as_written():
    stats, sink = WorkerStats(), FakeSink()
    meter = UsageMeter("w1")
    assert asyncio.run(flush_usage(sink, stats, meter)) == 0  # type: ignore[arg-type]
    stats.record_inference("v1", 0.5, 10)
    assert asyncio.run(flush_usage(sink, stats, meter)) == 1  # type: ignore[arg-type]
    assert asyncio.run(flush_usage(sink, stats, meter)) == 0  # type: ignore[arg-type]
    table, rows, columns, _ = sink.inserts[0]
    assert (table, columns) == (TABLE, COLUMNS) and rows[0][2:] == ["v1", 10, 0.5]


@pytest.fixture
def store(tmp_path):
    s = Store(f"chdb://{tmp_path}/ch")
    s.migrate()
    yield s
    s.close()


def entry(version: str, train_cpu_s: float) -> registry.ModelEntry:
    return registry.ModelEntry(
        version=version,
        name="fraud",
        created_at=T0,
        status="champion",
        train_start=T0,
        train_end=T0,
        rows_train=1,
        rows_valid=1,
        feature_names=["a"],
        sha256="0" * 64,
        train_cpu_s=train_cpu_s,
    )


def test_costs_per_version_and_when_inference_passed_training(store):
    registry.register(store, entry("v1", 1.0))
    registry.register(store, entry("v2", 5.0))
    registry.register(store, entry("v3", 2.0))  # never served
    rows = []
    for minute in range(4):
        at = T0 + dt.timedelta(minutes=minute)
        # v1: 0.4 s a minute from two workers -> passes 1.0 s in its third minute.
        rows.append([at, "w1", "v1", 1000, 0.3])
        rows.append([at, "w2", "v1", 1000, 0.1])
        rows.append([at, "w1", "v2", 500, 0.5])  # 2.0 s in all: below its 5.0 s
    store.insert(TABLE, rows, COLUMNS)

    costs = model_costs(store).set_index("version")
    assert list(costs.index) == ["v3", "v2", "v1"]
    v1 = costs.loc["v1"]
    assert v1["train_cpu"] == 1.0 and v1["inference_cpu_s"] == pytest.approx(1.6)
    assert v1["predictions"] == 8000 and v1["cpu_s_per_1k"] == pytest.approx(0.2)
    passed = pd.Timestamp(v1["inference_passed_training_at"])
    passed = passed.tz_localize("UTC") if passed.tzinfo is None else passed
    assert passed == pd.Timestamp(T0.replace(second=0) + dt.timedelta(minutes=2))
    assert pd.isna(costs.loc["v2", "inference_passed_training_at"])
    assert costs.loc["v2", "inference_cpu_s"] == pytest.approx(2.0)
    assert costs.loc["v3", "predictions"] == 0 and math.isnan(costs.loc["v3", "cpu_s_per_1k"])


def test_models_command_shows_costs(tmp_path):
    from typer.testing import CliRunner

    from streamlearn.cli import app

    url = f"chdb://{tmp_path}/ch"
    s = Store(url)
    s.migrate()
    registry.register(s, entry("v1", 1.0))
    s.insert(TABLE, [[T0, "w1", "v1", 2000, 1.5]], COLUMNS)
    s.close()
    result = CliRunner().invoke(
        app, ["models", "--store", url, "--state-dir", str(tmp_path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "cost (CPU seconds)" in result.output and "2,000 predictions" in result.output
    assert "0.75" in result.output and "2026-03-01 12:00" in result.output
