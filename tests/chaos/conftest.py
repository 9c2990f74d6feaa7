"""The fault-injection suite prints its figures (one row per scenario) at the end of the run."""

from __future__ import annotations

import pytest

from tests.chaos.harness import PROFILE
from tests.chaos.report import ROWS, table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    terminalreporter.section(f"fault injection (CHAOS_PROFILE={PROFILE})")
    for line in table(ROWS):
        terminalreporter.write_line(line)
