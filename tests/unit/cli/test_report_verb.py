"""`streamlearn report` on a real embedded store: the HTML page's path on stdout, a chart per
section, the store URL shown without its password, and --since narrowing the window."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streamlearn.foundation.store import Store
from tests.integration.report_data import seed


def report(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    return subprocess.run(
        [sys.executable, "-m", "streamlearn", "report", "--store", f"chdb://{tmp_path}/ch", *args],
        env={**env, "STREAMLEARN_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_report_writes_the_page_and_prints_its_path(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}/ch")
    store.migrate()
    seed(store)
    store.close()
    run = report(tmp_path, "--out", str(tmp_path / "r"))
    assert run.returncode == 0, run.stderr
    page = Path(run.stdout.strip())
    assert page == tmp_path / "r" / "report.html"
    html = page.read_text()
    assert html.count('src="data:image/png;base64,') == 8
    assert "2,400 transactions scored" in html and f"chdb://{tmp_path}/ch" in html
    late = report(tmp_path, "--since", "2026-03-01T13:30", "--out", str(tmp_path / "late"))
    assert late.returncode == 0, late.stderr
    assert "2026-03-01 13:30:00 UTC to" in Path(late.stdout.strip()).read_text()


def test_report_defaults_to_the_state_dir(tmp_path: Path) -> None:
    run = report(tmp_path)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()) == tmp_path / "state" / "report" / "report.html"
