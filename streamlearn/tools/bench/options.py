"""What one bench run does: the full run's sizes (about 15 minutes) and `--quick`'s (about 3)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from streamlearn.foundation.errors import StreamlearnError


@dataclass(frozen=True, slots=True)
class Options:
    events: int = 100_000  # preloaded for the throughput rows
    history_events: int = 30_000  # simulated history the champion is trained on
    history_days: float = 2.0
    latency_rate: float = 1000.0  # events/s of the latency, mixed and backlog runs
    latency_s: float = 60.0
    probe_s: float = 15.0  # each probe of the sustainable-rate search
    confirm_s: float = 60.0  # the confirmation of the best probe
    max_probes: int = 6
    mixed_s: float = 60.0
    outcome_rate: float = 300.0  # outcomes/s in the mixed run
    backlog: int = 50_000  # outcomes put on the topic at once
    backlog_min_s: float = 20.0
    backlog_max_s: float = 90.0
    # Scored transactions the worker keeps in memory for the label join. Outcomes come days
    # late in production, long after any such map let their transaction go, so every join
    # reads the logged features back from ClickHouse: a small map makes the bench do the same.
    pending_max_entries: int = 2_000
    pending_entries: tuple[int, ...] = (1_000_000, 2_000_000)  # memory figures, '' skips
    quix: bool = True
    seed: int = 7
    quick: bool = False

    @classmethod
    def quick_run(cls) -> Options:
        """A ~3-minute smoke of every phase: the same code, shorter runs, smaller sizes."""
        return cls(
            events=20_000,
            history_events=12_000,
            history_days=1.5,
            latency_s=20.0,
            probe_s=6.0,
            confirm_s=12.0,
            max_probes=3,
            mixed_s=20.0,
            backlog=10_000,
            backlog_min_s=8.0,
            backlog_max_s=40.0,
            pending_entries=(),
            quick=True,
        )

    def with_(self, **values: Any) -> Options:
        """A copy with the given (not None) values: CLI flags over the chosen defaults."""
        given = {k: v for k, v in values.items() if v is not None}
        return replace(self, **given) if given else self

    def outcomes_needed(self) -> int:
        return int(self.outcome_rate * self.mixed_s) + self.backlog

    def check(self) -> None:
        """Refuse sizes the run cannot honour, in one line, before anything starts."""
        scored = self.events + int(self.latency_rate * self.latency_s)
        if self.outcomes_needed() > scored:
            raise StreamlearnError(
                f"bench: the mixed and backlog runs need outcomes for "
                f"{self.outcomes_needed():,} scored transactions but only {scored:,} are "
                "scored before them: raise --events or lower --backlog"
            )
        if self.backlog_max_s < self.backlog_min_s:
            raise StreamlearnError("bench: backlog_max_s must be at least backlog_min_s")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
