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
import os
import statistics
import threading
import time
import urllib.request
from dataclasses import dataclass
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
from streamlearn.tools.bench.load import PredictionWatcher, high_watermarks, produce_all
from streamlearn.tools.bench.options import Options
from streamlearn.tools.bench.paced import Context
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


class CpuSampler(threading.Thread):
    """The worker process's CPU seconds (user + system, every thread: scoring, learning,
    chdb, librdkafka) sampled every 0.1 s with wall times, to read the CPU spent between its
    first and last prediction. CPU per event moves far less than events/s when other work
    shares the machine."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.path = Path(f"/proc/{pid}/stat")
        self.tick = os.sysconf("SC_CLK_TCK")
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def read(self) -> float:
        fields = self.path.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick  # utime, stime

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append((time.time(), self.read()))
            except OSError:
                return
            self.stop.wait(0.1)

    def between(self, start: float, end: float) -> float:
        """CPU seconds spent from wall time start to end (linear between samples)."""
        times = [t for t, _ in self.samples]
        cpu = [c for _, c in self.samples]
        return float(np.interp(end, times, cpu) - np.interp(start, times, cpu))


class Scraper(threading.Thread):
    """GET the page every `every` seconds while the run lasts; counts scrapes and failures."""

    def __init__(self, url: str, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url, every
        self.stop = threading.Event()
        self.scrapes = self.failures = 0
        self.bytes = 0
        self.seconds = 0.0  # spent in requests, wall time (the worker's answer included)

    def run(self) -> None:
        while not self.stop.wait(self.every):
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    self.bytes = len(resp.read())
                self.scrapes += 1
                self.seconds += time.perf_counter() - t0
            except OSError:
                self.failures += 1


def scored_at(settings: Settings, ids: list[str], start: dict[int, int]) -> list[int]:
    """Every preloaded transaction's scored_at (ms), read once the worker is done."""
    watcher = PredictionWatcher(settings, set(ids), start=start)
    try:
        missing = watcher.wait(120)
    finally:
        watcher.close()
    assert not missing, f"{missing} predictions missing"
    return [a.scored_at_ms for a in watcher.arrivals.values()]


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
    scraper = sampler = None
    ids = [m[2] for m in messages]
    try:
        worker.start()
        assert worker.proc is not None
        sampler = CpuSampler(worker.proc.pid)
        sampler.start()
        if variant in PAGES:
            scraper = Scraper(f"http://127.0.0.1:{settings.web_port}{PAGES[variant]}")
            scraper.start()
        worker.wait_for("transactions", len(ids), timeout=120 + events / 500)
        scored = scored_at(settings, ids, predictions_at)
    finally:
        for thread in (scraper, sampler):
            if thread is not None:
                thread.stop.set()
        worker.stop()
    first, last = min(scored) / 1000, max(scored) / 1000
    cpu = sampler.between(first, last)
    n = len(scored)
    return {
        "variant": variant,
        "per_s": round((n - 1) / (last - first), 1),
        "seconds": round(last - first, 3),
        "cpu_us_per_event": round(1e6 * cpu / (n - 1), 2),
        "scrapes": scraper.scrapes if scraper else 0,
        "scrape_failures": scraper.failures if scraper else 0,
        "page_bytes": scraper.bytes if scraper else 0,
        "scrape_ms": round(1000 * scraper.seconds / max(1, scraper.scrapes), 2) if scraper else 0,
    }


def micro_costs(repeat: int = 2000) -> dict[str, float]:
    """What the scoring path pays per slice of 500 (the latencies gathered and binned), in
    µs per event; and one render of a /metrics page's worth of families, in ms."""
    from streamlearn.streams.metrics import LatencyHistogram

    @dataclass(slots=True)
    class Valid:
        published_ms: float

    valid = [Valid(1.7e12 + i) for i in range(500)]
    histogram = LatencyHistogram()
    t0 = time.perf_counter()
    for _ in range(repeat):
        published = np.fromiter((v.published_ms for v in valid), np.float64, len(valid))
        histogram.observe_ms(1.7e12 + 600 - published)
    per_event_us = 1e6 * (time.perf_counter() - t0) / (repeat * len(valid))
    return {"slice_hook_us_per_event": round(per_event_us, 3)}


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
    summary: dict[str, Any] = {"micro": micro_costs()}
    for v in VARIANTS:
        rates = [x["per_s"] for x in runs if x["variant"] == v]
        cpu = [x["cpu_us_per_event"] for x in runs if x["variant"] == v]
        summary[v] = {
            "median_per_s": statistics.median(rates),
            "runs": rates,
            "median_cpu_us_per_event": statistics.median(cpu),
            "cpu_runs": cpu,
        }
    off, off_cpu = summary["off"]["median_per_s"], summary["off"]["median_cpu_us_per_event"]
    for v in ("ours", "faust"):
        summary[v]["overhead_pct"] = round(100 * (1 - summary[v]["median_per_s"] / off), 2)
        summary[v]["cpu_overhead_pct"] = round(
            100 * (summary[v]["median_cpu_us_per_event"] / off_cpu - 1), 2
        )
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
