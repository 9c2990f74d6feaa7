"""The training benchmark at a small size: real chdb, real training set, real LightGBM."""

from __future__ import annotations

from pathlib import Path

from streamlearn.tools.bench_training import render, run_training_bench


def test_downsampled_legit_rows_are_reweighted(tmp_path: Path) -> None:
    r = run_training_bench(20_000, tmp_path, max_rows=8_000)
    assert r.rows == 20_000 and 50 < r.frauds < 1_000
    # Over max_rows the legit class is sampled in SQL; each kept row stands for legit_weight.
    assert r.legit_weight > 2 and r.rows_used < 12_000
    assert abs(r.frauds + (r.rows_used - r.frauds) * r.legit_weight - r.rows) < 0.1 * r.rows
    assert r.holdout_auc > 0.7
    assert r.build_s > 0 and r.train_wall_s > 0 and r.rss_train_mib > 0
    assert "20,000" in render([r])
    assert not any(tmp_path.iterdir())  # the store is removed afterwards
