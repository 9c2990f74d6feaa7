"""Per-merchant fraud rate from outcomes already known before a transaction's event time.

Outcomes are bucketed by the day they became known; the rate for a transaction on day D
uses only the buckets of days D-30 .. D-1, so it is point-in-time correct at day
granularity and the same for a replay as for live traffic. The buckets are rebuilt from
ClickHouse on a timer (every worker sees every outcome, whatever partitions it owns).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from streamlearn.foundation.clock import DAY_MS

LOOKBACK_DAYS = 30
# Beta prior: a merchant with few labels sits near the overall fraud rate.
PRIOR_RATE = 0.005
PRIOR_WEIGHT = 20.0

# Looks back from the newest outcome, not the wall clock: replayed or simulated history runs
# on event time.
REFRESH_SQL = """
WITH (SELECT max(event_time) FROM streamlearn.outcomes) AS latest
SELECT t.merchant_id AS merchant_id,
       intDiv(toUnixTimestamp64Milli(o.known_at), 86400000) AS day,
       countIf(o.is_fraud) AS frauds,
       count() AS labeled
FROM (SELECT transaction_id, argMax(is_fraud, event_time) AS is_fraud,
             max(event_time) AS known_at
      FROM streamlearn.outcomes FINAL
      WHERE event_time >= latest - INTERVAL 31 DAY
      GROUP BY transaction_id) AS o
INNER JOIN (SELECT transaction_id, any(merchant_id) AS merchant_id
            FROM streamlearn.transactions
            WHERE event_time >= latest - INTERVAL 120 DAY
            GROUP BY transaction_id) AS t
USING transaction_id
GROUP BY merchant_id, day
"""


class MerchantRisk:
    """Daily (frauds, labeled) buckets per merchant and the smoothed rate before a time."""

    def __init__(self) -> None:
        self._days: dict[str, dict[int, tuple[int, int]]] = {}
        # merchant -> day -> rate: an outcome invalidates its merchant's entry only (the
        # learning thread adds outcomes while scoring reads rates: each step is one dict op).
        self._cache: dict[str, dict[int, tuple[float, float]]] = {}

    def replace(self, rows: list[tuple[Any, ...]]) -> None:
        """Swap in buckets from REFRESH_SQL rows (merchant_id, day, frauds, labeled)."""
        days: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
        for merchant, day, frauds, labeled in rows:
            days[merchant][int(day)] = (int(frauds), int(labeled))
        self._days = dict(days)
        self._cache = {}

    def add(self, merchant: str, known_ms: int, is_fraud: bool) -> None:
        """Count one outcome between refreshes (the next refresh supersedes it)."""
        day = known_ms // DAY_MS
        buckets = self._days.setdefault(merchant, {})
        f, n = buckets.get(day, (0, 0))
        buckets[day] = (f + int(is_fraud), n + 1)
        self._cache.pop(merchant, None)

    def rate(self, merchant: str, event_ms: int) -> tuple[float, float]:
        """(smoothed fraud rate, labeled count) over the 30 days before the event's day."""
        day = event_ms // DAY_MS
        cached = self._cache.get(merchant)
        hit = cached.get(day) if cached is not None else None
        if hit is not None:
            return hit
        frauds = labeled = 0
        buckets = self._days.get(merchant)
        if buckets:
            for d in range(day - LOOKBACK_DAYS, day):
                f, n = buckets.get(d, (0, 0))
                frauds += f
                labeled += n
        result = ((frauds + PRIOR_RATE * PRIOR_WEIGHT) / (labeled + PRIOR_WEIGHT), float(labeled))
        self._cache.setdefault(merchant, {})[day] = result
        return result

    def __len__(self) -> int:
        return len(self._days)
