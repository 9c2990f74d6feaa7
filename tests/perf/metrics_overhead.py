"""What /metrics costs the worker's end-to-end throughput, measured like the bench's throughput
row: `python -m tests.perf.metrics_overhead [--events N] [--rounds R] [--json FILE]`.

Each run preloads N transactions on fresh topics, starts a worker on them serving a 200-tree
LightGBM champion, and times the first to the last `scored_at` of its predictions (the bench's
`worker_throughput`). Variants, in a rotating order each round so drift on this shared machine
spreads over all of them:
- off: STREAMLEARN_METRICS_ENABLED=false;
- ours: metrics on (streams/metrics.py), /metrics scraped every second meanwhile (Prometheus
  scrapes every 15 s by default: a harsher load);
- faust: ours off, Faust's own Prometheus sensor installed instead (tests/perf/
  faust_sensor_worker.py), its page scraped every second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import urllib.request
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from streamlearn.batch_retrain.publish import publish_release
from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.domain.release import build_release
from streamlearn.foundation.clock import DAY_MS, now_ms
from streamlearn.foundation.kafka import ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.tools import broker
from streamlearn.tools.bench.champion import simulator
from streamlearn.tools.bench.load import high_watermarks, produce_all
from streamlearn.tools.bench.options import Options
from streamlearn.tools.bench.paced import Context
from streamlearn.tools.bench.phases import worker_throughput
from streamlearn.tools.bench.run import bench_settings
from streamlearn.tools.processes import WorkerProcess

VARIANTS = ("off", "ours", "faust")
PAGES = {"ours": "/metrics", "faust": "/faust-metrics"}


def champion_release() -> dict[str, Any]:
    """A 200-tree LightGBM model over the worker's features (trained on noise): its scoring
    cost per event is a real champion's."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5000, len(FEATURE_NAMES)))
    y = (x[:, 0] + rng.normal(scale=0.5, size=5000) > 0.8).astype(int)
    data = lgb.Dataset(x, label=y, feature_name=list(FEATURE_NAMES))
    params = {"objective": "binary", "verbosity": -1, "num_leaves": 31, "seed": 5}
    booster = lgb.train(params, data, num_boost_round=200)
    t = now_ms()
    return build_release(
        booster, feature_names=FEATURE_NAMES, train_start=t - DAY_MS, train_end=t,
        metrics={"auc": 0.5}, signing_key=None, reason="metrics overhead run",
    )  # fmt: skip


class Scraper(threading.Thread):
    """GET the page every `every` seconds while the run lasts; counts scrapes and failures."""

    def __init__(self, url: str, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.stop = threading.Event()
        self.scrapes = self.failures = 0
        self.bytes = 0

    def run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    self.bytes = len(resp.read())
                self.scrapes += 1
            except OSError:
                self.failures += 1


def one_run(base: Settings, variant: str, events: int, release: dict[str, Any]) -> dict[str, Any]:
    settings = bench_settings(base, Options(events=events)).with_overrides(
        metrics_enabled=variant == "ours"
    )
    ensure_topics(settings)
    publish_release(settings, release)
    command = ["-m", "tests.perf.faust_sensor_worker"] if variant == "faust" else None
    worker = WorkerProcess(settings, settings.state_dir / "worker.log", command=command)
    ctx = Context(settings, worker, simulator(events, 1.0, seed=7))
    topic = settings.topic("transactions")
    predictions_at = high_watermarks(settings, settings.topic("predictions"))
    messages = ctx.transactions(events, events / 3000.0, now_ms() - 3_600_000)
    produce_all(settings, topic, messages)
    scraper = None
    try:
        worker.start()
        if variant in PAGES:
            scraper = Scraper(f"http://127.0.0.1:{settings.web_port}{PAGES[variant]}")
            scraper.start()
        row, versions = worker_throughput(
            ctx, [m[2] for m in messages], predictions_at, 120 + events / 500
        )
    finally:
        if scraper is not None:
            scraper.stop.set()
        worker.stop()
    assert set(versions) == {release["version"]}, versions
    return {
        "variant": variant,
        "per_s": round(row.per_s, 1),
        "seconds": round(row.seconds, 3),
        "scrapes": scraper.scrapes if scraper else 0,
        "scrape_failures": scraper.failures if scraper else 0,
        "page_bytes": scraper.bytes if scraper else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = Settings()
    started = not broker.is_running(base)
    print(f"broker {broker.up(base)}", flush=True)
    release = champion_release()
    runs = []
    try:
        for r in range(args.rounds):
            order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
            for variant in order:
                result = {"round": r, **one_run(base, variant, args.events, release)}
                print(json.dumps(result), flush=True)
                runs.append(result)
    finally:
        if started:
            broker.down(base)
    summary = {}
    for v in VARIANTS:
        rates = [x["per_s"] for x in runs if x["variant"] == v]
        summary[v] = {"median_per_s": statistics.median(rates), "runs": rates}
    off = summary["off"]["median_per_s"]
    for v in ("ours", "faust"):
        summary[v]["overhead_pct"] = round(100 * (1 - summary[v]["median_per_s"] / off), 2)
    # Paired by round: each round ran every variant back to back.
    for v in ("ours", "faust"):
        pairs = [
            1 - a["per_s"] / b["per_s"]
            for a in runs if a["variant"] == v
            for b in runs if b["variant"] == "off" and b["round"] == a["round"]
        ]  # fmt: skip
        summary[v]["paired_overhead_pct"] = [round(100 * p, 2) for p in pairs]
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
