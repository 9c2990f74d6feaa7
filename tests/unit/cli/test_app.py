"""The command's skeleton: an exit status per kind of error (the same table in --help and the
README), verbs listed without importing them, and `status --watch` with or without SECONDS."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamlearn.cli.app import EXIT_CODES, VERBS, exit_code, load_verb, optional_values
from streamlearn.foundation.errors import (
    BrokerUnavailable,
    ConfigError,
    MissingToolError,
    ModelRejected,
    NotEnoughData,
    QueryRefused,
    StoreBusy,
    StoreUnavailable,
    WorkerUnavailable,
)
from streamlearn.schemas import SchemaError

README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), 2),
        (BrokerUnavailable("x"), 3),
        (StoreUnavailable("x"), 4),
        (StoreBusy("x"), 4),
        (NotEnoughData("x"), 5),
        (QueryRefused("x"), 6),
        (ModelRejected("x"), 6),
        (SchemaError("x"), 6),
        (WorkerUnavailable("x"), 7),
        (MissingToolError("x"), 1),
        (KeyboardInterrupt(), 130),
        (ValueError("a bug"), None),
    ],
)
def test_each_kind_of_error_has_its_exit_status(error: BaseException, code: int | None) -> None:
    assert exit_code(error) == code


def test_the_readme_lists_the_same_exit_statuses() -> None:
    text = README.read_text()
    listed = dict(re.findall(r"^\| `(\d+)` \| (.+?) \|$", text, re.M))
    assert {int(k) for k in listed} == {e.code for e in EXIT_CODES}
    for entry in EXIT_CODES:
        assert entry.meaning in listed[str(entry.code)], entry


def test_optional_watch_seconds() -> None:
    assert optional_values(["status", "--watch"]) == ["status", "--watch=2"]
    assert optional_values(["status", "--watch", "--json"]) == ["status", "--watch=2", "--json"]
    assert optional_values(["status", "--watch", "5"]) == ["status", "--watch", "5"]
    assert optional_values(["retrain", "--watch"]) == ["retrain", "--watch"]


def test_each_verb_is_listed_with_its_own_help() -> None:
    for name, verb in VERBS.items():
        command = load_verb(name, verb)
        assert command.name == name
        assert (command.help or "").splitlines()[0].strip() == verb.help, name


def test_help_loads_no_verb_and_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from streamlearn.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('pandas', 'faust', 'lightgbm', 'matplotlib', 'clickhouse_connect', 'pyarrow')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy "
        "or m.startswith('streamlearn.cli.') and m != 'streamlearn.cli.app'))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"
