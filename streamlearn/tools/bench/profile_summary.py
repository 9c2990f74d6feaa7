"""`make profile`'s results (pure): each phase's stalls cut from the worker's stall file by time,
its latency and flame graph, as summary.json and summary.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streamlearn.streams.stalls import Stall, aggregate
from streamlearn.tools.bench.figures import Latency

MD_TOP = 15  # sources listed per phase in summary.md (summary.json has them all)


@dataclass
class PhaseRun:
    """One profiled phase: its wall-clock window (time.time()), latency and flame graph."""

    name: str
    what: str
    started_at: float
    ended_at: float
    latency: Latency | None = None  # producer -> prediction received; None: no paced load
    flame: dict[str, Any] = field(default_factory=dict)  # FlameRecorder.stop()
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. outcomes learned


def stalls_of(body: dict[str, Any] | None) -> list[Stall]:
    """The stalls of the worker's stall file (`stalls`: [at_s, wall_ms, cpu_ms, source])."""
    return [Stall(*row) for row in (body or {}).get("stalls", [])]


def within(stalls: Sequence[Stall], start: float, end: float) -> list[Stall]:
    """The stalls that ended in [start, end)."""
    return [s for s in stalls if start <= s.at_s < end]


def stall_table(stalls: Sequence[Stall]) -> dict[str, Any]:
    """Totals and the per-source rows of one phase's stalls."""
    return {
        "count": len(stalls),
        "total_ms": round(sum(s.wall_ms for s in stalls), 1),
        "cpu_ms": round(sum(s.cpu_ms for s in stalls), 1),
        "max_ms": round(max((s.wall_ms for s in stalls), default=0.0), 1),
        "by_source": aggregate(stalls),
    }


def _latency(lat: Latency | None) -> dict[str, float | None] | None:
    if lat is None:
        return None
    return {k: _num(getattr(lat, k)) for k in ("p50", "p99", "max")}


def _num(v: float) -> float | None:
    return round(v, 2) if math.isfinite(v) else None


def summary(
    phases: Sequence[PhaseRun], stall_file: dict[str, Any] | None, run: dict[str, Any]
) -> dict[str, Any]:
    """summary.json: the run's settings, then per phase its latency, flame graph and stalls."""
    stalls = stalls_of(stall_file)
    out = []
    for p in phases:
        out.append(
            {
                "name": p.name,
                "what": p.what,
                "seconds": round(p.ended_at - p.started_at, 1),
                "started_at": p.started_at,
                "ended_at": p.ended_at,
                "latency_ms": _latency(p.latency),
                "flamegraph": p.flame,
                "stalls": stall_table(within(stalls, p.started_at, p.ended_at)),
                **p.extra,
            }
        )
    file_info = {
        "stall_file": stall_file is not None,
        "stalls_recorded": (stall_file or {}).get("count"),
        "stalls_dropped": (stall_file or {}).get("dropped"),
    }
    return {"run": {**run, **file_info}, "phases": out}


def _f(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def markdown(body: dict[str, Any], top: int = MD_TOP) -> str:
    """summary.md: an overview row per phase, then each phase's costliest stall sources."""
    run = body["run"]
    lines = [
        "# Worker profile: loop stalls and flame graphs per phase",
        "",
        f"Run {run.get('date', '')}, {'--quick' if run.get('quick') else 'default sizes'}; "
        f"stalls are event-loop callbacks over {_f(run.get('stall_ms'))} ms "
        "(wall time; loop CPU is the loop thread's CPU time during them). "
        f"Load average at the start: {run.get('load_average', '-')}.",
        "",
    ]
    if not run.get("stall_file"):
        lines += ["**No stall file**: the worker did not stop cleanly; stalls are missing.", ""]
    lines += [
        "| phase | s | p50 ms | p99 ms | stalls | stall wall ms | stall loop CPU ms "
        "| longest ms | flame graph (samples) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in body["phases"]:
        lat, st, fl = p["latency_ms"] or {}, p["stalls"], p["flamegraph"]
        graph = f"{fl['svg']} ({_f(fl.get('samples'))})" if fl.get("svg") else "none"
        lines.append(
            f"| {p['name']} | {_f(p['seconds'])} | {_f(lat.get('p50'))} | {_f(lat.get('p99'))} "
            f"| {st['count']:,} | {_f(st['total_ms'])} | {_f(st['cpu_ms'])} "
            f"| {_f(st['max_ms'])} | {graph} |"
        )
    for p in body["phases"]:
        lines += ["", f"## {p['name']}: {p['what']}", ""]
        lines += _phase_table(p, top)
    return "\n".join(lines) + "\n"


def _phase_table(p: dict[str, Any], top: int) -> list[str]:
    rows = p["stalls"]["by_source"]
    note = p["flamegraph"].get("note")
    out = [f"py-spy: {note}", ""] if note else []
    if not rows:
        return [*out, "No stalls."]
    out += [
        "| source (coroutine @ where it stopped, or callback) | count | total ms | max ms "
        "| loop CPU ms | max CPU ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows[:top]:
        out.append(
            f"| {_cell(r['source'])} | {r['count']:,} | {_f(r['total_ms'])} | {_f(r['max_ms'])} "
            f"| {_f(r['cpu_ms'])} | {_f(r['max_cpu_ms'])} |"
        )
    if len(rows) > top:
        out.append(f"| … {len(rows) - top} more in summary.json | | | | | |")
    return out
