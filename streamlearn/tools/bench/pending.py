"""Memory the label join's pending map takes in a worker: RSS growth per entry, measured.

Run in a fresh process per size (`python -m streamlearn.tools.bench.pending 1000000`): it
fills a BoundedMap with entries shaped like the worker's (a UUID-like transaction id, 26
features packed as doubles, five served scores, the merchant id, the event time) and prints
one JSON line with the resident-set growth. `streamlearn bench` runs it for 1M and 2M entries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import numpy as np

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.streams.label_join import Logged, logged_entry
from streamlearn.streams.pending import BoundedMap

SCORERS = ("river_lr", "river_hst", "blend", "lightgbm", "served")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fill(n: int, seed: int = 3) -> dict[str, float]:
    """Fill a pending map with n entries; the RSS it added, per entry too."""
    rng = np.random.default_rng(seed)
    pending: BoundedMap[Logged] = BoundedMap(n)
    chunk = 50_000
    before = rss_bytes()
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        features = rng.lognormal(1.0, 1.0, size=(size, len(FEATURE_NAMES)))
        scores = rng.random(size=(size, len(SCORERS))).tolist()
        for i in range(size):
            # Fresh string objects, as decoding each message makes them.
            txn = {
                "merchant_id": f"merchant-{(start + i) % 5000:06d}",
                "event_time": 1_700_000_000_000 + start + i,
            }
            scored = dict(zip(SCORERS, scores[i], strict=True))
            pending.put(f"txn-{uuid.uuid4().hex}", logged_entry(features[i], scored, txn))
    seconds = time.perf_counter() - t0
    added = rss_bytes() - before
    return {
        "entries": n,
        "rss_mib": added / 2**20,
        "bytes_per_entry": added / n,
        "fill_s": seconds,
    }


def measure(counts: list[int]) -> list[dict[str, float]]:
    """One fresh interpreter per count, so each RSS figure is that map's alone."""
    out = []
    for n in counts:
        proc = subprocess.run(
            [sys.executable, "-m", "streamlearn.tools.bench.pending", str(n)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps(fill(int(arg))), flush=True)
