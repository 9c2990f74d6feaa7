"""A task the bench runs every few seconds on a daemon thread beside the load (polls, queries)."""

from __future__ import annotations

import threading
import time
from typing import Self


class Periodic:
    """Calls tick() every interval_s on a named daemon thread, from start() until stop().

    With `paced`, interval_s is from one start to the next (the tick's own time counts);
    without, it is the pause after each tick.
    """

    join_timeout_s = 10.0

    def __init__(self, name: str, interval_s: float, *, paced: bool = False) -> None:
        self.interval_s = interval_s
        self._paced = paced
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            self.tick()
            spent = time.perf_counter() - t0 if self._paced else 0.0
            self._stop.wait(max(0.0, self.interval_s - spent))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.join_timeout_s)
