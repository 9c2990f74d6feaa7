"""Per-merchant fraud history from outcomes already known before a transaction's event time.

Outcomes are bucketed by the day they became known, the merchant's scored transactions by
their event day. For a transaction on day D: frauds known on days D-w .. D-1 (w = 1, 7, 28),
their rate among the merchant's transactions that matured on those days (event day + the
label maturity: a mature transaction without an outcome is legit, as in the training set),
and the v1 30-day smoothed rate over labelled outcomes. Only days before D count, so the
figures are point-in-time correct at day granularity whatever order outcomes and transactions
are processed in, and the same for a replay as for live traffic. Outcomes are added by the
learning thread as they arrive, transactions by the scoring path as they are scored; both are
rebuilt from ClickHouse on a timer (every worker sees every outcome, whatever partitions it
owns) and merged by keeping the larger count of each bucket (counts only grow).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from streamlearn.domain.features import HISTORY_WINDOWS
from streamlearn.foundation.clock import DAY_MS

LOOKBACK_DAYS = 30
# Beta prior: a merchant with few labels sits near the overall fraud rate.
PRIOR_RATE = 0.005
PRIOR_WEIGHT = 20.0
_LONGEST = max(LOOKBACK_DAYS, *HISTORY_WINDOWS)

# Looks back from the newest outcome / transaction, not the wall clock: replayed or simulated
# history runs on event time. Rows: (merchant_id, day, frauds, labeled, scored): outcome rows
# by the day they became known, transaction rows (scored) by their event day.
REFRESH_SQL = """
WITH (SELECT max(event_time) FROM streamlearn.outcomes) AS latest
SELECT t.merchant_id AS merchant_id,
       intDiv(toUnixTimestamp64Milli(o.known_at), 86400000) AS day,
       countIf(o.is_fraud) AS frauds,
       count() AS labeled,
       toUInt64(0) AS scored
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
UNION ALL
SELECT merchant_id,
       intDiv(toUnixTimestamp64Milli(event_time), 86400000) AS day,
       toUInt64(0) AS frauds,
       toUInt64(0) AS labeled,
       toUInt64(uniqExact(transaction_id)) AS scored
FROM streamlearn.transactions
WHERE event_time >= (SELECT max(event_time) FROM streamlearn.transactions) - INTERVAL 60 DAY
GROUP BY merchant_id, day
"""

Buckets = dict[str, dict[int, tuple[int, int]]]


class MerchantRisk:
    """Daily outcome and transaction buckets per merchant, and the history before a time."""

    def __init__(self, maturity_days: float = 7.0) -> None:
        self.maturity = math.ceil(maturity_days)
        self._days: Buckets = {}  # merchant -> known day -> (frauds, labeled)
        self._scored: dict[str, dict[int, int]] = {}  # merchant -> event day -> transactions
        # merchant -> (day, history): one day per merchant, the one traffic is on. Adding a
        # bucket invalidates it only when it is older than the cached day (a fresh outcome or
        # transaction counts from a later day on): each step is one dict op, as the learning
        # thread adds outcomes while scoring reads.
        self._cache: dict[str, tuple[int, tuple[float, ...]]] = {}

    def replace(self, rows: list[tuple[Any, ...]]) -> None:
        """Merge buckets from REFRESH_SQL rows (merchant_id, day, frauds, labeled[, scored]):
        the store's count of a bucket, or ours if we have counted more (not yet written)."""
        days: Buckets = defaultdict(dict)
        scored: dict[str, dict[int, int]] = defaultdict(dict)
        for merchant, day, frauds, labeled, *rest in rows:
            if labeled:
                days[merchant][int(day)] = (int(frauds), int(labeled))
            if rest and rest[0]:
                scored[merchant][int(day)] = int(rest[0])
        for merchant, mine in self._days.items():
            theirs = days[merchant]
            for day, (f, n) in mine.items():
                f0, n0 = theirs.get(day, (0, 0))
                theirs[day] = (max(f, f0), max(n, n0))
        for merchant, counts in self._scored.items():
            theirs_n = scored[merchant]
            for day, n in counts.items():
                theirs_n[day] = max(n, theirs_n.get(day, 0))
        self._days, self._scored, self._cache = dict(days), dict(scored), {}

    def add(self, merchant: str, known_ms: int, is_fraud: bool) -> None:
        """Count one outcome, known at known_ms, between refreshes."""
        day = known_ms // DAY_MS
        buckets = self._days.setdefault(merchant, {})
        f, n = buckets.get(day, (0, 0))
        if n == 0:
            _prune(buckets, day - _LONGEST - 1)
        buckets[day] = (f + int(is_fraud), n + 1)
        self._invalidate(merchant, day)

    def scored(self, merchant: str, event_ms: int) -> None:
        """Count one scored transaction of the merchant (it matures `maturity` days later)."""
        day = event_ms // DAY_MS
        counts = self._scored.setdefault(merchant, {})
        n = counts.get(day, 0)
        if n == 0:
            _prune(counts, day - _LONGEST - self.maturity - 1)
        counts[day] = n + 1
        self._invalidate(merchant, day + self.maturity)

    def _invalidate(self, merchant: str, day: int) -> None:
        cached = self._cache.get(merchant)
        if cached is not None and cached[0] > day:
            self._cache.pop(merchant, None)

    def rate(self, merchant: str, event_ms: int) -> tuple[float, ...]:
        """The merchant's fraud history before the event's day, in MERCHANT_HISTORY order."""
        day = event_ms // DAY_MS
        cached = self._cache.get(merchant)
        if cached is not None and cached[0] == day:
            return cached[1]
        result = self._history(merchant, day)
        self._cache[merchant] = (day, result)
        return result

    def _history(self, merchant: str, day: int) -> tuple[float, ...]:
        # Per window (HISTORY_WINDOWS, then the 30-day lookback): frauds known in it, and the
        # transactions that matured in it; a bucket `ago` days back counts in every window
        # at least that long. Iterating the buckets kept (pruned to the longest window) is
        # cheaper than walking every day: most merchants have a few.
        windows = (*HISTORY_WINDOWS, LOOKBACK_DAYS)
        frauds = [0] * len(windows)
        matured = [0] * len(windows)
        labeled = 0
        for d, (f, n) in (self._days.get(merchant) or {}).items():
            ago = day - d
            if 0 < ago <= _LONGEST:
                for i, w in enumerate(windows):
                    if ago <= w:
                        frauds[i] += f
                if ago <= LOOKBACK_DAYS:
                    labeled += n
        for d, n in (self._scored.get(merchant) or {}).items():
            ago = day - d - self.maturity
            if 0 < ago <= _LONGEST:
                for i, w in enumerate(windows):
                    if ago <= w:
                        matured[i] += n
        smoothed = (frauds[-1] + PRIOR_RATE * PRIOR_WEIGHT) / (labeled + PRIOR_WEIGHT)
        counts = tuple(float(f) for f in frauds[:-1])
        rates = tuple(f / max(n, f, 1) for f, n in zip(frauds[:-1], matured[:-1], strict=True))
        return (smoothed, float(labeled), *counts, *rates)

    def __len__(self) -> int:
        return len(self._days)


def _prune(buckets: dict[int, Any], oldest: int) -> None:
    """Drop the buckets older than `oldest` (a new day opens: no window reaches them)."""
    for day in [d for d in buckets if d < oldest]:
        del buckets[day]
