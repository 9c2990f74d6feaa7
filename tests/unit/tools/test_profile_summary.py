"""`make profile`'s summary: stalls cut per phase by time, the JSON and the Markdown tables, and
what py-spy's own output says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.streams.stalls import Stall
from streamlearn.tools.bench import profile, pyspy
from streamlearn.tools.bench.figures import Latency
from streamlearn.tools.bench.options import Options
from streamlearn.tools.bench.profile_summary import PhaseRun, markdown, summary, within

STALL_FILE = {
    "threshold_ms": 5.0,
    "count": 5,
    "dropped": 0,
    "stalls": [
        [99.0, 50.0, 40.0, "before the first phase"],
        [100.5, 12.0, 10.0, "Scorer.score @ streamlearn/streams/scoring.py:88"],
        [101.0, 30.0, 1.0, "Scorer.score @ streamlearn/streams/scoring.py:88"],
        [150.0, 8.0, 7.0, "a|b"],  # a source with a pipe: escaped in the Markdown table
        [205.0, 6.0, 6.0, "Status.get @ streamlearn/streams/web.py:140"],
    ],
}


def phases() -> list[PhaseRun]:
    return [
        PhaseRun(
            "latency",
            "1,000 transactions/s",
            100.0,
            200.0,
            Latency(1000, 4.5, 21.25, 40.0),
            {"svg": "latency.svg", "samples": 9000, "note": ""},
            {"sent": 1000},
        ),
        PhaseRun(
            "backlog",
            "outcomes at once",
            200.0,
            260.0,
            Latency(10, 5.0, float("inf"), float("inf")),  # a prediction never came
            {"svg": None, "samples": None, "note": "Permission denied"},
        ),
    ]


def test_stalls_are_cut_by_phase_and_aggregated_per_source() -> None:
    body = summary(phases(), STALL_FILE, {"date": "today", "stall_ms": 5.0, "quick": True})
    latency, backlog = body["phases"]
    assert latency["seconds"] == 100.0 and latency["sent"] == 1000
    assert latency["latency_ms"] == {"p50": 4.5, "p99": 21.25, "max": 40.0}
    st = latency["stalls"]
    assert (st["count"], st["total_ms"], st["cpu_ms"], st["max_ms"]) == (3, 50.0, 18.0, 30.0)
    top = st["by_source"][0]
    assert top["source"].startswith("Scorer.score @") and top["count"] == 2
    assert (top["total_ms"], top["max_ms"], top["max_cpu_ms"]) == (42.0, 30.0, 10.0)
    assert backlog["latency_ms"] == {"p50": 5.0, "p99": None, "max": None}  # JSON has no inf
    assert backlog["stalls"]["count"] == 1
    assert body["run"]["stall_file"] and body["run"]["stalls_recorded"] == 5
    json.dumps(body, allow_nan=False)  # valid JSON as written


def test_within_is_half_open() -> None:
    stalls = [Stall(100.0, 10.0, 5.0, "x"), Stall(200.0, 10.0, 5.0, "x")]
    assert within(stalls, 100.0, 200.0) == stalls[:1]


def test_markdown_overview_and_per_phase_tables() -> None:
    body = summary(phases(), STALL_FILE, {"date": "today", "stall_ms": 5.0, "quick": True})
    md = markdown(body, top=1)
    lines = md.splitlines()
    assert lines[0].startswith("# ")
    assert "| latency | 100.0 | 4.5 | 21.2 | 3 | 50.0 | 18.0 | 30.0 | latency.svg (9,000) |" in md
    assert "| backlog | 60.0 | 5.0 | - | 1 | 6.0 | 6.0 | 6.0 | none |" in md
    assert "py-spy: Permission denied" in md
    assert "| `Scorer.score @ streamlearn/streams/scoring.py:88` | 2 | 42.0 | 30.0 |" in md
    assert "| … 1 more in summary.json |" in md  # top=1 of 2 sources
    assert "No stall file" not in md


def test_markdown_says_when_the_worker_left_no_stall_file() -> None:
    body = summary(phases(), None, {"date": "today", "stall_ms": 5.0})
    md = markdown(body)
    assert "**No stall file**" in md and "No stalls." in md
    assert body["phases"][0]["stalls"]["count"] == 0


def test_a_pipe_in_a_source_does_not_break_the_table() -> None:
    body = summary(phases(), STALL_FILE, {"date": "today", "stall_ms": 5.0})
    assert "| `a\\|b` | 1 |" in markdown(body)


def test_py_spy_output_and_command() -> None:
    said = (
        "py-spy> Sampling process 100 times a second. Press Control-C to exit.\n\n"
        "py-spy> Stopped sampling because Control-C pressed\n"
        "py-spy> Wrote flamegraph data to 'x.svg'. Samples: 315 Errors: 2\n"
    )
    assert pyspy.parse_samples(said) == (315, 2)
    assert pyspy.parse_samples("Error: Permission denied (os error 13)") == (None, None)
    cmd = pyspy.command("py-spy", 42, Path("/o/mixed.svg"), 100)
    assert cmd[:4] == ["py-spy", "record", "--pid", "42"]
    assert "--nonblocking" in cmd and cmd[-2:] == ["-o", "/o/mixed.svg"]


def test_sizes_that_leave_too_few_scored_transactions_are_refused() -> None:
    profile.check(Options())
    profile.check(Options.quick_run())
    with pytest.raises(StreamlearnError, match="scored"):
        profile.check(Options.quick_run().with_(backlog=100_000))


def test_bad_flags_are_refused_before_anything_starts(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        profile.parse(["--stall-ms", "0"])
    assert exc.value.code == 2
    assert "--stall-ms and --rate must be positive" in capsys.readouterr().err
