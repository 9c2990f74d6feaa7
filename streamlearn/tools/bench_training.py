"""Training cost at scale: build the training set in ClickHouse and train, for N labeled rows.

`streamlearn bench --training ROWS` (or `python -m batch_retrain.bench_training ROWS...`) fills
a fresh embedded store (chdb) with ROWS logged transactions over 30 days, every feature
FEATURE_NAMES as the worker logs them and ~1% fraud decided by a non-linear function of a
few features, all generated inside ClickHouse (INSERT ... SELECT FROM numbers). Then it
times the real retrain steps: build_training_set (point in time, legit class downsampled in
SQL and re-weighted above max_rows) and train (LightGBM, early stopping), and samples the
process's resident memory (chdb runs in this process, so its query memory counts too).
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from streamlearn.batch_retrain.train import train
from streamlearn.batch_retrain.training_set import build_training_set
from streamlearn.domain.features import FEATURE_NAMES, FEATURE_VERSION
from streamlearn.foundation.store import Store

DAY_MS = 86_400_000
SPAN_DAYS = 30


# A standard normal per (row n, feature i, seed) by Box-Muller on two hashes: deterministic
# (rand functions inside a lambda are evaluated once per query, not per element).
def _normal_sql(seed: int) -> str:
    def u(k: int) -> str:
        return f"((cityHash64(n, i, {seed}, {k}) % 4294967295) + 1) / 4294967297"

    return f"sqrt(-2 * log({u(1)})) * cos(2 * pi() * {u(2)})"


@dataclass(frozen=True)
class TrainingBench:
    """One run's figures: times in seconds, memory in MiB (peak resident set)."""

    rows: int
    frauds: int
    rows_used: int
    legit_weight: float
    generate_s: float
    build_s: float
    train_wall_s: float
    train_cpu_s: float
    best_iteration: int
    holdout_auc: float
    holdout_ap: float
    rss_before_mib: float
    rss_build_mib: float
    rss_train_mib: float


class PeakRss:
    """Samples this process's resident memory (VmRSS) every few ms; peak() since reset()."""

    def __init__(self, every_s: float = 0.02) -> None:
        self.every_s = every_s
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_kib())
            time.sleep(self.every_s)

    def reset(self) -> None:
        self._peak = rss_kib()

    def peak_mib(self) -> float:
        return max(self._peak, rss_kib()) / 1024


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def generate(store: Store, rows: int, *, seed: int = 7) -> int:
    """ROWS transactions with logged features and ~1% fraud outcomes; returns the frauds."""
    names = ", ".join(f"'{f}'" for f in FEATURE_NAMES)
    start = int(time.time() * 1000) - SPAN_DAYS * DAY_MS
    step = SPAN_DAYS * DAY_MS / max(rows, 1)
    normal, k = _normal_sql(seed), len(FEATURE_NAMES)
    # Chunks keep chdb's insert memory bounded whatever ROWS is.
    chunk = 1_000_000
    for first in range(0, rows, chunk):
        n = min(chunk, rows - first)
        store.command(
            f"""
            INSERT INTO streamlearn.transactions
                (transaction_id, event_time, card_id, merchant_id, amount, currency,
                 feature_version, features, score, model_version, scored_at,
                 source_partition, source_offset)
            SELECT concat('b', toString(n)),
                   fromUnixTimestamp64Milli(toInt64({start} + n * {step}), 'UTC'),
                   concat('card-', toString(n % 200000)),
                   concat('m-', toString(n % 5000)),
                   round(exp(3.5 + (cityHash64(n, {seed}) % 1000) / 400.0), 2),
                   'EUR', '{FEATURE_VERSION}',
                   mapFromArrays([{names}], arrayMap(i -> {normal}, range({k}))),
                   0.0, 'none', now64(3), 0, n
            FROM (SELECT number + {first} AS n FROM numbers({n}))"""
        )
    a, b, c = (f"features['{f}']" for f in FEATURE_NAMES[:3])
    logit = f"-6.4 + 1.4 * {a} + 1.8 * ({b} > 1) + 0.7 * {a} * {c}"
    # Fraud: a logistic function of three features with an interaction, ~1% overall.
    store.command(
        f"""
        INSERT INTO streamlearn.outcomes
            (transaction_id, is_fraud, event_time, received_at, source_partition, source_offset)
        SELECT transaction_id, true, event_time + INTERVAL 1 HOUR, now64(3), 0, source_offset
        FROM streamlearn.transactions
        WHERE cityHash64(transaction_id, {seed}) % 1000000 < 1e6 / (1 + exp(-({logit})))"""
    )
    _, out = store.query_rows("SELECT count() FROM streamlearn.outcomes")
    return int(out[0][0])


def run_training_bench(
    rows: int, work_dir: Path, *, max_rows: int = 2_000_000, num_threads: int = 2
) -> TrainingBench:
    """Generate ROWS labeled rows in a fresh chdb store under work_dir, build the set, train."""
    path = work_dir / f"bench-training-{rows}"
    shutil.rmtree(path, ignore_errors=True)
    store = Store(f"chdb://{path}")
    try:
        store.migrate()
        with PeakRss() as rss:
            t0 = time.perf_counter()
            frauds = generate(store, rows)
            generate_s = time.perf_counter() - t0
            before = rss.peak_mib()

            rss.reset()
            # Every generated row is labeled: maturity 0 at the newest event time.
            ts = build_training_set(store, maturity_s=0, max_rows=max_rows)
            build_peak = rss.peak_mib()

            rss.reset()
            result = train(ts, num_threads=num_threads)
            train_peak = rss.peak_mib()
        used = ts.train.rows + ts.valid.rows + ts.holdout.rows
        return TrainingBench(
            rows=rows,
            frauds=frauds,
            rows_used=used,
            legit_weight=ts.legit_weight,
            generate_s=generate_s,
            build_s=ts.build_s,
            train_wall_s=result.train_wall_s,
            train_cpu_s=result.train_cpu_s,
            best_iteration=result.best_iteration,
            holdout_auc=result.metrics["holdout_auc"],
            holdout_ap=result.metrics["holdout_ap"],
            rss_before_mib=before,
            rss_build_mib=build_peak,
            rss_train_mib=train_peak,
        )
    finally:
        store.close()
        shutil.rmtree(path, ignore_errors=True)


def render(results: list[TrainingBench]) -> str:
    """A plain table of the figures, one line per run."""
    head = (
        f"{'labeled rows':>13} {'fraud':>8} {'rows used':>10} {'legit w':>8} "
        f"{'generate s':>10} {'build s':>8} {'train s':>8} {'train cpu s':>11} {'trees':>6} "
        f"{'AUC':>6} {'peak RSS build':>15} {'peak RSS train':>15}"
    )
    lines = [head]
    for r in results:
        lines.append(
            f"{r.rows:>13,} {r.frauds:>8,} {r.rows_used:>10,} {r.legit_weight:>8.2f} "
            f"{r.generate_s:>10.1f} {r.build_s:>8.1f} {r.train_wall_s:>8.1f} "
            f"{r.train_cpu_s:>11.1f} {r.best_iteration:>6} {r.holdout_auc:>6.3f} "
            f"{r.rss_build_mib:>11,.0f} MiB {r.rss_train_mib:>11,.0f} MiB"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, nargs="+", help="labeled rows per run, e.g. 1000000")
    parser.add_argument("--max-rows", type=int, default=2_000_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    results = []
    for n in args.rows:
        results.append(run_training_bench(n, args.dir, max_rows=args.max_rows))
        print(render(results[-1:]), flush=True)
    print(render(results))


if __name__ == "__main__":
    main()
