"""Worker processes started by the demo, the benchmark and the tests, stopped cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.settings import Settings, settings_env


class WorkerProcess:
    """`streamlearn worker` in a child process with the given settings."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        *,
        extra_env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ):
        self.settings = settings
        self.log_path = log_path
        self.extra_env = extra_env or {}
        # The tests run the worker with a store test double: python -m tests.chaos.faulty_worker
        self.command = command or ["-m", "streamlearn", "worker"]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **settings_env(self.settings), **self.extra_env}
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, *self.command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StreamlearnError(
                    f"the worker exited at start ({self.proc.returncode}); see {self.log_path}: "
                    + _tail(self.log_path)
                )
            try:
                self.status()
                return self
            except OSError:
                time.sleep(0.3)
        self.kill()
        raise StreamlearnError(
            f"the worker did not start within {timeout:.0f}s; see {self.log_path}"
        )

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.settings.web_port}/status/"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())

    def wait_for(self, key: str, value: int, timeout: float) -> dict[str, Any]:
        """Poll /status until status[key] >= value; return the last status."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                last = self.status()
                if (last.get(key) or 0) >= value:
                    return last
            except OSError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise StreamlearnError(
                    f"the worker exited; see {self.log_path}: {_tail(self.log_path)}"
                )
            time.sleep(0.2)
        raise StreamlearnError(
            f"worker {key} reached {last.get(key)} of {value} within {timeout:.0f}s; "
            f"see {self.log_path}"
        )

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (graceful: in-flight batches finish), then SIGKILL after the timeout."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait()

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])
