"""Shared fixtures: one real local Kafka broker per test session, and per-test settings."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.tools import broker

INTEGRATION_DIR = Path(__file__).parent / "integration"
# Passwords the tests hand to brokers, clients and stores (see register_secret): at the end of
# the session every log and text file the run wrote is grepped for them.
SECRETS: set[str] = set()
# The files that must hold a password (mode 0600): a broker's config and its keystore password.
PRIVATE_NAMES = {"server.properties", "keystore.password"}
TEXT_SUFFIXES = {".log", ".out", ".err", ".txt", ".json", ".properties", ".conf", ".yaml", ".ckpt"}


def register_secret(secret: str) -> str:
    """Note a password a test uses, so the session's closing sweep can look for leaks."""
    SECRETS.add(secret)
    return secret


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ is an integration test (`-m "not integration"`)."""
    for item in items:
        if INTEGRATION_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


def under_ci() -> bool:
    """Under CI=true a test that needs the broker fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def leaked_secrets(root: Path, secrets: set[str]) -> list[str]:
    """Files under root (logs, status dumps, configs) holding any secret, private ones aside."""
    found = []
    for path in root.rglob("*"):
        if path.suffix not in TEXT_SUFFIXES or path.name in PRIVATE_NAMES or not path.is_file():
            continue
        if path.stem.isdigit():  # a Kafka log segment (topic data, not a log file)
            continue
        data = path.read_bytes()
        found += [str(path) for secret in secrets if secret.encode() in data]
    return found


@pytest.fixture(scope="session", autouse=True)
def no_password_in_any_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole run: no registered password in any log or text file the tests wrote."""
    yield
    if SECRETS:
        root = tmp_path_factory.getbasetemp()
        leaks = leaked_secrets(root, SECRETS)
        print(f"\npassword sweep: {len(SECRETS)} passwords looked for under {root}")
        assert not leaks, f"a password appears in {sorted(set(leaks))[:10]}"


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a real broker started for this session (stopped at its end)."""
    port = int(os.environ.get("STREAMLEARN_TEST_KAFKA_PORT", "39092"))
    base = Settings(
        kafka_bootstrap=f"127.0.0.1:{port}",
        state_dir=tmp_path_factory.mktemp("broker"),
        topic_prefix="",
    )
    try:
        bootstrap = broker.up(base)
    except StreamlearnError as exc:
        if under_ci():
            pytest.fail(f"the local Kafka broker did not start under CI: {exc}", pytrace=False)
        pytest.skip(f"integration tests need the local Kafka broker: {exc}")
    try:
        yield base.with_overrides(kafka_bootstrap=bootstrap)
    finally:
        broker.down(base)


@pytest.fixture
def settings(kafka_settings: Settings, tmp_path: Path) -> Settings:
    """Per-test settings on the session broker: own topic prefix, state dir, store, web port."""
    return kafka_settings.with_overrides(
        topic_prefix=f"t{uuid4().hex[:8]}-",
        state_dir=tmp_path / "state",
        clickhouse_url=f"chdb://{tmp_path}/ch",
        partitions=2,
        web_port=free_port(),
    )
