"""Loop-stall monitor (STREAMLEARN_STALL_LOG_MS): every event-loop callback that runs longer than
a threshold is recorded with its wall time, the loop thread's CPU time and where it ran."""

from __future__ import annotations

import asyncio
import json
import sys
import sysconfig
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

_ORIGINAL_RUN = asyncio.events.Handle._run
KEEP_STALLS = 100_000  # stalls kept one by one for the file (the aggregates count all of them)
STATUS_TOP = 20  # sources listed on /status, by total wall time
_MAX_AWAIT_DEPTH = 64
_ASYNCIO = str(Path(asyncio.__file__).parent) + "/"


class Stall(NamedTuple):
    at_s: float  # time.time() when the callback ended
    wall_ms: float
    cpu_ms: float  # the loop thread's CPU time during the callback (thread_time)
    source: str


def aggregate(stalls: Iterable[Stall]) -> list[dict[str, Any]]:
    """count / total / max per source, the costliest (total wall time) first."""
    table: dict[str, list[float]] = {}
    for s in stalls:
        _add(table, s)
    return rows_of(table)


def _add(table: dict[str, list[float]], s: Stall) -> None:
    row = table.get(s.source)
    if row is None:
        table[s.source] = [1, s.wall_ms, s.wall_ms, s.cpu_ms, s.cpu_ms]
        return
    row[0] += 1
    row[1] += s.wall_ms
    row[2] = max(row[2], s.wall_ms)
    row[3] += s.cpu_ms
    row[4] = max(row[4], s.cpu_ms)


def rows_of(table: dict[str, list[float]]) -> list[dict[str, Any]]:
    rows = [
        {
            "source": source,
            "count": int(count),
            "total_ms": round(total, 2),
            "max_ms": round(top, 2),
            "cpu_ms": round(cpu, 2),
            "max_cpu_ms": round(top_cpu, 2),
        }
        for source, (count, total, top, cpu, top_cpu) in list(table.items())
    ]
    return sorted(rows, key=lambda r: r["total_ms"], reverse=True)


class StallMonitor:
    """The stalls seen since install(): every one kept (up to KEEP_STALLS), in arrival order."""

    def __init__(self, threshold_ms: float, keep: int = KEEP_STALLS) -> None:
        self.threshold_ms = threshold_ms
        self.stalls: deque[Stall] = deque(maxlen=keep)
        self.table: dict[str, list[float]] = {}  # every stall, kept or not, per source
        self.count = 0

    def record(self, handle: asyncio.Handle, wall_s: float, cpu_s: float) -> None:
        stall = Stall(time.time(), wall_s * 1000, cpu_s * 1000, source_of(handle))
        self.count += 1
        self.stalls.append(stall)
        _add(self.table, stall)

    def summary(self, top: int | None = STATUS_TOP) -> dict[str, Any]:
        """The table by source (a poll costs one row per source, not one per stall)."""
        rows = rows_of(self.table)
        return {
            "threshold_ms": self.threshold_ms,
            "count": self.count,
            "dropped": self.count - len(self.stalls),  # not kept one by one (the oldest)
            "total_ms": round(sum(r["total_ms"] for r in rows), 2),
            "by_source": rows if top is None else rows[:top],
        }

    def write(self, path: Path) -> None:
        """Every kept stall and the full table, as JSON (written whole, then renamed)."""
        body = {**self.summary(top=None), "stalls": [list(s) for s in self.stalls]}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(body) + "\n")
        tmp.replace(path)


_current: StallMonitor | None = None


def install(threshold_ms: float) -> StallMonitor | None:
    """Time every asyncio callback from now on (all loops of this process); 0 leaves the loop
    untouched. Handle._run is where asyncio runs each callback and each task step."""
    global _current
    if threshold_ms <= 0:
        return None
    uninstall()
    monitor = _current = StallMonitor(threshold_ms)
    original, record = _ORIGINAL_RUN, monitor.record
    threshold_s = threshold_ms / 1000
    wall, cpu = time.perf_counter, time.thread_time

    def _run(self: asyncio.Handle) -> None:  # self: it replaces a method
        t0, c0 = wall(), cpu()
        original(self)
        took = wall() - t0
        if took > threshold_s:
            record(self, took, cpu() - c0)

    asyncio.events.Handle._run = _run  # type: ignore[method-assign]
    return monitor


def uninstall() -> StallMonitor | None:
    """Restore asyncio's own Handle._run; the monitor that was installed, if any."""
    global _current
    monitor, _current = _current, None
    asyncio.events.Handle._run = _ORIGINAL_RUN  # type: ignore[method-assign]
    return monitor


def stop(path: Path | None) -> None:
    """On the worker's stop: uninstall, and write the stalls to `path` if one is set."""
    monitor = uninstall()
    if monitor is not None and path is not None:
        monitor.write(path)


def snapshot() -> dict[str, Any] | None:
    """/status's `stalls`: the table so far, or None when the monitor is off."""
    return _current.summary() if _current is not None else None


def source_of(handle: asyncio.Handle) -> str:
    """Where a callback ran: a task's coroutine and the line it stopped at, else the callback."""
    callback = getattr(handle, "_callback", None)
    # A task step (TaskStepMethWrapper) and a task wake-up (task_wakeup) are bound to the task.
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        return _task_source(task)
    func = getattr(callback, "func", callback)  # functools.partial
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    module = getattr(func, "__module__", None)
    return f"{module}.{name}" if module else name


def _task_source(task: asyncio.Task) -> str:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", None) or type(coro).__qualname__
    frame = _innermost_frame(coro)
    if frame is None:
        return f"{name} (done)"
    return f"{name} @ {short_path(frame.f_code.co_filename)}:{frame.f_lineno}"


def _innermost_frame(coro: Any) -> Any:
    """The innermost frame of the task's await chain outside asyncio itself (an
    `await asyncio.sleep()` names its caller); None once the task finished."""
    frame = None
    for _ in range(_MAX_AWAIT_DEPTH):
        current = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if current is None or current.f_code.co_filename.startswith(_ASYNCIO):
            break
        frame = current
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if coro is None:
            break
    return frame


def _roots() -> tuple[str, ...]:
    """Prefixes cut from file names: site-packages, the standard library and the project's
    checkout, longest first."""
    here = Path(__file__).parent  # streamlearn/streams (a link to streams/) or streams/
    project = str(here.parent.parent if here.parent.name == "streamlearn" else here.parent)
    paths = {p for p in sys.path if p.endswith("-packages")} | {
        project,
        sysconfig.get_path("stdlib"),
    }
    return tuple(sorted((p.rstrip("/") + "/" for p in paths), key=len, reverse=True))


_ROOTS = _roots()


def short_path(filename: str) -> str:
    """streamlearn/streams/scoring.py, faust/agents/agent.py: no machine's prefix."""
    for root in _ROOTS:
        if filename.startswith(root):
            return filename[len(root) :]
    return filename
