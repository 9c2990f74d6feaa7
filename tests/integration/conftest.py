"""Integration fixtures beside the broker's (tests/conftest.py): the local schema registry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.tools import registry_local
from tests.conftest import under_ci

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_BUILD_DIR = Path(os.environ.get("STREAMLEARN_REGISTRY_DIR", ROOT / ".venv" / "registry"))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real registry started for this session (stopped at its end): its URL and state dir."""
    port = int(os.environ.get("STREAMLEARN_TEST_REGISTRY_PORT", "38081"))
    state = tmp_path_factory.mktemp("registry")
    try:
        url = registry_local.up(REGISTRY_BUILD_DIR, port, state)
    except StreamlearnError as exc:
        if under_ci():
            pytest.fail(f"the local schema registry did not start under CI: {exc}", pytrace=False)
        pytest.skip(f"these tests need the local schema registry: {exc}")
    try:
        yield url, state
    finally:
        registry_local.down(state)
