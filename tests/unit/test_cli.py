"""The `streamlearn` command as a user runs it: errors are one line on stderr, exit status 2.

Every command is started once, all at the same time, when the module starts; the slowest
(a worker facing a Kafka that does not answer, about 10 s) bounds the file's run time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".venv" / "bin" / "streamlearn"
CLI = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "streamlearn"]

CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "help": (["--help"], {}),
    "no_args": ([], {}),
    "module_help": (["-m", "streamlearn", "--help"], {}),
    "bad_flag": (["--nope"], {}),
    "bad_sub_flag": (["worker", "--nope"], {}),
    "bad_int": (["worker", "--web-port", "abc"], {}),
    "unknown_command": (["launch"], {}),
    "bad_format": (["query", "--format", "xml", "SELECT 1"], {}),
    "bad_env": (["query", "SELECT 1"], {"STREAMLEARN_PARTITIONS": "0"}),
    "csv": (["query", "--format", "csv", "SELECT 1 AS x, 'a' AS s"], {}),
    "json": (["query", "--format", "json", "SELECT count() AS n FROM streamlearn.labels"], {}),
    "write": (["query", "DROP TABLE streamlearn.models"], {}),
    "bad_store_port": (["query", "--store", "http://u:topsecret@h:abc/db", "SELECT 1"], {}),
    "worker": (["worker", "--bootstrap", "127.0.0.1:1", "--web-port", "1"], {}),
    "bad_gate": (["retrain", "--gate-primary", "f1"], {}),
    "bad_gate_env": (["retrain"], {"STREAMLEARN_GATE_TOL_ECE": "-1"}),
    "no_shadow": (["models", "shadow-check"], {}),
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> Run:
    command = [sys.executable, *args] if args[:1] == ["-m"] else [*CLI, *args]
    start = time.monotonic()
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("STREAMLEARN_")}
    base["COLUMNS"] = "100"
    # The worker starts first; the quick commands take turns in one more slot while it waits.
    pool = ThreadPoolExecutor(max_workers=2)
    futures: dict[str, Future[Run]] = {}
    for name, (args, extra) in sorted(CASES.items(), key=lambda kv: kv[0] != "worker"):
        home = tmp_path_factory.mktemp(name)
        env = {**base, "STREAMLEARN_STATE_DIR": str(home / "state"), **extra}
        futures[name] = pool.submit(_run, args, env, home)
    yield lambda name: futures[name].result()
    pool.shutdown(wait=True)


def assert_one_line_error(run: Run, *needles: str) -> None:
    assert run.returncode == 2, run
    assert "Traceback" not in run.stderr, run.stderr
    assert len(run.err_lines) == 1, run.stderr
    for needle in needles:
        assert needle in run.stderr, run.stderr


def test_help(runs) -> None:
    run = runs("help")
    assert run.returncode == 0 and run.stderr == ""
    for verb in ("up", "down", "worker", "simulate", "retrain", "query", "status", "schemas"):
        assert verb in run.stdout


def test_no_arguments_print_the_help(runs) -> None:
    run = runs("no_args")
    assert run.returncode == 0 and "Usage: streamlearn" in run.stdout and run.stderr == ""


def test_python_dash_m_is_the_same_command(runs) -> None:
    run = runs("module_help")
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.split("\n", 1)[1] == runs("help").stdout.split("\n", 1)[1]


def test_bad_flag_is_one_line_and_exit_2(runs) -> None:
    assert_one_line_error(runs("bad_flag"), "--nope", "--help")


def test_bad_flag_of_a_subcommand_names_the_subcommand(runs) -> None:
    assert_one_line_error(runs("bad_sub_flag"), "streamlearn worker", "--nope")


def test_bad_value_is_one_line(runs) -> None:
    assert_one_line_error(runs("bad_int"), "--web-port")


def test_unknown_command_is_one_line(runs) -> None:
    assert_one_line_error(runs("unknown_command"), "launch")


def test_invalid_query_format_is_one_line(runs) -> None:
    assert_one_line_error(runs("bad_format"), "--format", "xml")


def test_invalid_environment_setting_is_one_line(runs) -> None:
    assert_one_line_error(runs("bad_env"), "partitions")


def test_query_csv_and_json(runs) -> None:
    csv, js = runs("csv"), runs("json")
    assert csv.returncode == 0 and csv.stdout == "x,s\n1,a\n", csv
    assert js.returncode == 0 and js.stdout == '[{"n":0}]\n', js


def test_query_refuses_writes_in_one_line(runs) -> None:
    assert_one_line_error(runs("write"), "read-only", "DROP")


def test_a_malformed_store_url_is_one_line(runs) -> None:
    run = runs("bad_store_port")
    assert "topsecret" not in run.stderr
    assert_one_line_error(run, "ClickHouse")


def test_worker_without_kafka_says_so_clearly_without_a_traceback(runs) -> None:
    run = runs("worker")
    assert run.returncode == 2, run
    assert "Traceback" not in run.stderr
    # The product probes Kafka for a fixed 10 s; the rest is imports. The bound catches a hang
    # (a retry loop) with room for a loaded machine, not a precise timing.
    assert run.seconds < 20, run.seconds
    kafka = [line for line in run.err_lines if line.startswith("streamlearn:")]
    assert len(kafka) == 1, run.stderr[-2000:]
    assert "Kafka at 127.0.0.1:1 did not answer" in kafka[0]
    assert "STREAMLEARN_KAFKA_BOOTSTRAP" in kafka[0]
    assert run.stdout == ""


def test_worker_without_kafka_prints_only_one_line(runs) -> None:
    assert_one_line_error(runs("worker"), "Kafka")


def test_a_bad_gate_setting_is_one_line(runs) -> None:
    assert_one_line_error(runs("bad_gate"), "--gate-primary")
    assert_one_line_error(runs("bad_gate_env"), "gate_tol_ece")


def test_shadow_check_without_a_shadow(runs) -> None:
    run = runs("no_shadow")
    assert run.returncode == 0 and run.stdout.strip() == "no shadow model", run
