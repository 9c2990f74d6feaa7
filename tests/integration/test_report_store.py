"""build_report on a real embedded store: seeded through Store.insert into the real tables,
every chart drawn and written; on an empty store, every chart says what it is missing."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from streamlearn.foundation.store import Store, redact_url
from streamlearn.report.build import SPECS, build_report, run_queries
from streamlearn.report.queries import parameters
from tests.integration.report_data import T0, VERSIONS, seed

SLUGS = (
    "online-metrics",
    "roc-pr",
    "score-distribution",
    "data-drift",
    "model-lifecycle",
    "inference-cost",
    "dead-letters",
    "throughput",
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"chdb://{tmp_path}/ch")
    s.migrate()
    yield s
    s.close()


def sections(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, re.S))


def through_proxy(store: Store):
    """query_df as the worker's query proxy answers it: parameters sent as JSON, the result
    back as Arrow (LowCardinality columns arrive as categoricals, times tz-aware)."""

    def query_df(sql: str, params: dict) -> pd.DataFrame:
        return store.query_arrow(sql, json.loads(json.dumps(params))).to_pandas()

    return query_df


@pytest.mark.parametrize("via", ["store", "proxy"])
def test_every_chart_from_a_seeded_store(store: Store, tmp_path: Path, via: str):
    seed(store)
    out = tmp_path / "report"
    query_df = store.query_df if via == "store" else through_proxy(store)
    path = build_report(query_df, out, None, redact_url("chdb://" + str(tmp_path)))
    page = path.read_text()
    assert path == out / "report.html"
    assert len(SPECS) == len(SLUGS)
    found = sections(page)
    assert list(found) == list(SLUGS)
    for slug in SLUGS:
        png = out / f"{slug}.png"
        assert png.stat().st_size > 5000, slug
        assert 'src="data:image/png;base64,' in found[slug], slug
        assert "Missing:" not in found[slug], (slug, found[slug])
    assert "2,400 transactions scored from 2026-03-01 12:00 to 2026-03-01 13:59 UTC" in page


def test_the_queries_read_what_was_written(store: Store):
    seed(store)
    frames, errors = run_queries(store.query_df, parameters(None))
    assert errors == {}
    # One served-version change per swap: none -> first model -> second model.
    served = frames["served_versions"]["model_version"].tolist()
    assert [v for i, v in enumerate(served) if i == 0 or v != served[i - 1]] == [
        "none",
        VERSIONS[0],
        VERSIONS[1],
    ]
    # The latest outcome wins: labelled rows are one per transaction.
    labelled = frames["labelled_scores"]
    assert 1500 < len(labelled) < 1900 and labelled["is_fraud"].any()
    models = frames["models"].set_index("version")
    assert models.loc[VERSIONS[2], "status"] == "rejected"
    assert str(models.loc[VERSIONS[1], "first_served"]).startswith("2026-03-01 12:40")
    assert pd.isna(models.loc[VERSIONS[2], "first_served"])  # it never served
    # Cumulative inference CPU passes the first model's 2.5 s of training within its span.
    cost = frames["inference_cost"]
    first = cost[cost["version"] == VERSIONS[0]]
    assert first["cum_cpu_s"].is_monotonic_increasing and first["cum_cpu_s"].max() > 2.5
    reasons = set(frames["dead_letters"]["reason"])
    assert "validate: amount is negative" in reasons
    assert "validate: event_time N is more than N days old" in reasons


def test_since_narrows_every_query(store: Store, tmp_path: Path):
    seed(store)
    since = T0 + dt.timedelta(minutes=90)
    frames, errors = run_queries(store.query_df, parameters(since))
    assert errors == {}
    assert int(frames["range"]["transactions"].iloc[0]) == 600  # the last 30 minutes
    assert set(frames["served_versions"]["model_version"]) == {VERSIONS[1]}
    # The rejected model changed at minute 82 and is out; the champion always stays.
    assert set(frames["models"]["version"]) == {VERSIONS[1]}
    path = build_report(store.query_df, tmp_path / "r", since, "chdb://x")
    assert "2026-03-01 13:30:00 UTC to" in path.read_text()


def test_an_empty_store_says_what_each_chart_is_missing(store: Store, tmp_path: Path):
    path = build_report(store.query_df, tmp_path / "empty", None, "http://reader:***@ch:8123")
    page = path.read_text()
    found = sections(page)
    assert list(found) == list(SLUGS)
    for slug, body in found.items():
        assert "<img" not in body and "Missing:" in body, slug
        assert not (tmp_path / "empty" / f"{slug}.png").exists()
    assert "no rows in streamlearn.online_metrics" in found["online-metrics"]
    assert "nothing writes this table yet" in found["dead-letters"]
    assert "processing latency" in found["throughput"]
    assert "no scored transactions in this window" in page
    assert "http://reader:***@ch:8123" in page
