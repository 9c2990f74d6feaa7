"""The worker's "now" for validating event times: the wall clock, or the stream's own clock.

With STREAMLEARN_CLOCK=event (a replay of history) an event's age is measured from the newest
event time seen on its partition, so last year's history is accepted as history; the future
limit stays on the wall clock, because a history never lies ahead of it (and the stream's own
clock could not tell a corrupt far-future time from a quiet night between two events).
"""

from __future__ import annotations

from typing import Any


class EventClock:
    """The `now_ms` validation measures one record's event time against."""

    def __init__(self, mode: str, max_future_ms: int) -> None:
        if mode not in ("wall", "event"):
            raise ValueError(f"clock must be 'wall' or 'event', not {mode!r}")
        self.mode = mode
        self.max_future_ms = max_future_ms
        self.newest: dict[int, int] = {}  # partition -> newest plausible event time seen

    def now(self, partition: int, event_time: Any, wall_ms: int) -> int:
        """Wall mode: wall_ms. Event mode: the partition's newest event time with this one's
        (if it is not beyond the wall clock's future limit), else wall_ms, which then refuses
        it as in the future (or it is not a time at all: the validator says so)."""
        if self.mode == "wall":
            return wall_ms
        if (
            not isinstance(event_time, int)
            or isinstance(event_time, bool)
            or event_time > wall_ms + self.max_future_ms
        ):
            return wall_ms
        newest = self.newest.get(partition)
        if newest is None or event_time > newest:
            self.newest[partition] = newest = event_time
        return newest
