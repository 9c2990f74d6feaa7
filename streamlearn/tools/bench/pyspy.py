"""One py-spy flame graph of a running process, recorded from start() until stop() (SIGINT)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from streamlearn.foundation.errors import MissingToolError

RATE = 100  # samples a second
STOP_TIMEOUT_S = 120.0  # py-spy may run behind on a busy machine: it writes what it has
_SAMPLES = re.compile(r"Samples: (\d+) Errors: (\d+)")


def py_spy() -> str:
    """The py-spy beside this interpreter (the `profile` extra), else the one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise MissingToolError(
            "py-spy is not installed: pip install -e '.[profile]' (make profile installs it)"
        )
    return found


def command(exe: str, pid: int, svg: Path, rate: int = RATE) -> list[str]:
    """Non-blocking: a blocking sampler pauses every thread of the worker (chdb's pool
    included) at each sample, which is itself a stall. One root per thread (--threads)."""
    return [
        exe, "record", "--pid", str(pid), "--nonblocking", "--threads",
        "--rate", str(rate), "--format", "flamegraph", "-o", str(svg),
    ]  # fmt: skip


def parse_samples(said: str) -> tuple[int | None, int | None]:
    """(samples, errors) from py-spy's last line, (None, None) if it did not write one."""
    found = _SAMPLES.findall(said)
    if not found:
        return None, None
    samples, errors = found[-1]
    return int(samples), int(errors)


class FlameRecorder:
    """py-spy attached to `pid`, writing `svg` when stopped; its output goes to `svg`.log."""

    def __init__(self, pid: int, svg: Path, rate: int = RATE) -> None:
        self.svg, self.log = svg, svg.with_suffix(".py-spy.log")
        self.cmd = command(py_spy(), pid, svg, rate)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> FlameRecorder:
        self.svg.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.started = time.monotonic()
        return self

    def stop(self) -> dict[str, Any]:
        """SIGINT (py-spy then writes the graph), a kill if it does not end; what it recorded."""
        seconds = time.monotonic() - self.started
        proc = self.proc
        if proc is None:
            return {"svg": None, "note": "not started"}
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        said = self.log.read_text(errors="replace") if self.log.exists() else ""
        samples, errors = parse_samples(said)
        ok = self.svg.exists() and samples is not None
        return {
            "svg": self.svg.name if self.svg.exists() else None,
            "seconds": round(seconds, 1),
            "samples": samples,
            "errors": errors,
            "exit": proc.returncode,
            "note": "" if ok else _last_line(said) or f"py-spy exited {proc.returncode}",
        }


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
