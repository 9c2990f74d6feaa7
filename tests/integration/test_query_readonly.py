"""`streamlearn query` is read-only, on chdb opened directly and through the worker's web port:
writes of every kind are refused with one clear line and change nothing; SELECT works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.foundation.settings import Settings, settings_env
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import worker_store
from streamlearn.tools.processes import WorkerProcess
from tests.integration.test_pipeline import produce_transactions, simulated

WRITES = {
    "INSERT": "INSERT INTO streamlearn.models (version, name) VALUES ('evil', 'x')",
    "ALTER": "ALTER TABLE streamlearn.models DELETE WHERE 1",
    "DROP": "DROP TABLE streamlearn.models",
    "CREATE": "CREATE TABLE streamlearn.evil (a Int8) ENGINE = Memory",
    "SET": "SET readonly = 0",
    # Passes the first-word check: only ClickHouse's readonly=1 stops these.
    "SETTINGS": "SELECT 1 SETTINGS readonly = 0",
    "file()": "SELECT * FROM file('/etc/hostname', 'LineAsString')",
}
SNAPSHOT = "SELECT name, total_rows FROM system.tables WHERE database = 'streamlearn' ORDER BY name"


def _query(settings: Settings, sql: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "streamlearn", "query", "--format", "csv", sql],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _check_refused(settings: Settings) -> str:
    """Every write refused in one line; the tables as before; SELECT works. The snapshot."""
    before = _query(settings, SNAPSHOT)
    assert before.returncode == 0 and "models" in before.stdout, before.stderr
    for verb, sql in WRITES.items():
        run = _query(settings, sql)
        lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
        assert run.returncode == 6, (verb, run.stdout, run.stderr)  # refused
        assert len(lines) == 1 and "is read-only" in lines[0], (verb, run.stderr)
    after = _query(settings, SNAPSHOT)
    assert after.stdout == before.stdout
    return after.stdout


@pytest.mark.timeout(120)
def test_query_is_read_only_on_the_embedded_store(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    Store(settings.store_url).migrate()
    snapshot = _check_refused(settings)
    assert "evil" not in snapshot


@pytest.mark.timeout(150)
def test_query_is_read_only_through_the_worker(settings: Settings, tmp_path: Path) -> None:
    with WorkerProcess(settings, tmp_path / "worker.log") as proc:
        snapshot = _check_refused(settings)
        # The web port enforces it too, whatever settings a read-only client sends.
        remote = worker_store(settings, readonly=True)
        with pytest.raises(StoreUnavailable, match=r"read-only request|readonly mode"):
            remote.query_df(WRITES["INSERT"], readonly=0)
        # Reads on the analyst session leave the writer's session writable (a read-only
        # query can leave a chdb session read-only): the worker still stores what it scores.
        produce_transactions(settings, simulated(50, seed=31))
        proc.wait_for("transactions", 50, timeout=90)
    assert "evil" not in snapshot
