"""`streamlearn replay` refuses what cannot work in one line and exit status 2, before it
starts anything (no broker, no worker)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamlearn.tools.simulate.handbook import HandbookConfig, generate, write


def replay(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
    return subprocess.run(
        [sys.executable, "-m", "streamlearn", "replay", *args],
        env={
            **env,
            "STREAMLEARN_STATE_DIR": str(tmp_path / "state"),
            # Nothing listens there: a run that got as far as Kafka would say so (exit 3).
            "STREAMLEARN_KAFKA_BOOTSTRAP": "192.0.2.1:9",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = generate(HandbookConfig(customers=50, terminals=50, days=10, seed=1))
    return write(frame, tmp_path_factory.mktemp("h") / "h.csv")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label-delay", "a week"], "--label-delay takes a duration such as 7d"),
        (["--map", "card_id"], "--map takes field=COLUMN pairs"),
        (["--map", "colour=C"], "'colour' is not a Transaction field"),
        (["--step", "0"], "--step must be longer than 0"),
        (["--warmup", "30d", "--map", "handbook"], "--warmup 30d leaves nothing to score"),
        ([], "has no column amount, card_id, event_time"),  # not mapped: the field names
    ],
)
def test_bad_flags_are_one_line_and_exit_2(
    tmp_path: Path, history: Path, args: list[str], message: str
) -> None:
    run = replay(tmp_path, str(history), *args)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    run = replay(tmp_path, str(tmp_path / "absent.parquet"), "--map", "handbook")
    assert run.returncode == 2 and "no such file" in run.stderr, run.stderr
    (tmp_path / "h.json").write_text("{}")
    run = replay(tmp_path, str(tmp_path / "h.json"))
    assert run.returncode == 2 and "reads .csv or .parquet" in run.stderr, run.stderr
