"""The search for the sustainable rate (pure): short probes upward, then one long confirmation.

A probe holds when the worker kept p99 within the target and delivered every prediction in
time. Probes start at a share of the batch throughput and climb by a factor until one fails
(or the batch figure itself holds), the bracket is narrowed once, and the best rate that held
is confirmed by a long run; if that fails, the next lower rate that held is confirmed instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Probe:
    rate: float
    seconds: float
    confirm: bool = False


@dataclass
class RateSearch:
    """Call `next()` for the run to do, `record(held)` with its outcome, until `next()` is None.

    `result` is then the confirmed rate (0.0 when no rate held for `confirm_s`).
    """

    batch_rate: float
    probe_s: float = 15.0
    confirm_s: float = 60.0
    start_share: float = 0.3
    factor: float = 1.4
    refine: int = 1  # bisections of the bracket between the best pass and the first fail
    max_probes: int = 6
    confirm_tries: int = 2
    floor: float = 50.0  # below this no search goes: the worker is broken, not slow
    passes: list[float] = field(default_factory=list)
    fails: list[float] = field(default_factory=list)
    result: float | None = None
    _probes: int = 0
    _refined: int = 0
    _confirms: int = 0
    _current: Probe | None = None

    def __post_init__(self) -> None:
        if not self.batch_rate > 0 or not math.isfinite(self.batch_rate):
            raise ValueError(f"the batch rate must be a positive number, not {self.batch_rate}")
        if self.factor <= 1:
            raise ValueError(f"factor must be > 1, not {self.factor}")

    @property
    def done(self) -> bool:
        return self.result is not None

    def next(self) -> Probe | None:
        if self.result is not None:
            return None
        if self._current is None:
            self._current = self._choose()
        return self._current

    def record(self, held: bool) -> None:
        probe = self._current or self.next()
        if probe is None:
            raise RuntimeError("the search is over: nothing to record")
        self._current = None
        if probe.confirm:
            self._confirmed(probe.rate, held)
            return
        self._probes += 1
        (self.passes if held else self.fails).append(probe.rate)

    # -- choosing the next run --------------------------------------------------------------
    def _choose(self) -> Probe | None:
        lo = max(self.passes) if self.passes else None
        above = [f for f in self.fails if lo is None or f > lo]
        hi = min(above) if above else None
        if self._probes >= self.max_probes:
            return self._confirm(lo)
        if lo is None:
            if hi is None:
                start = max(self.floor, self.start_share * self.batch_rate)
                return Probe(min(start, self.batch_rate), self.probe_s)
            lower = hi / self.factor
            return Probe(lower, self.probe_s) if lower >= self.floor else self._confirm(None)
        if hi is None:
            if lo >= self.batch_rate:
                return self._confirm(lo)
            return Probe(min(lo * self.factor, self.batch_rate), self.probe_s)
        if self._refined < self.refine and hi / lo > 1.1:
            self._refined += 1
            return Probe(math.sqrt(lo * hi), self.probe_s)
        return self._confirm(lo)

    def _confirm(self, rate: float | None) -> Probe | None:
        if rate is None or self._confirms >= self.confirm_tries:
            self.result = 0.0
            return None
        self._confirms += 1
        return Probe(rate, self.confirm_s, confirm=True)

    def _confirmed(self, rate: float, held: bool) -> None:
        if held:
            self.result = rate
            return
        # What held for a short probe did not hold for long: drop it and what lay above it.
        self.fails.append(rate)
        self.passes = [p for p in self.passes if p < rate]
        lower = max(self.passes) if self.passes else rate / self.factor
        if self._confirms >= self.confirm_tries or lower < self.floor:
            self.result = 0.0
            return
        self._current = self._confirm(lower)
