"""Kafka over TLS: `up` makes a CA and a broker keystore and starts an SSL (or SASL_SSL)
listener; a worker, producer and consumer that trust the CA work, a client without it is
refused, and no keystore, SASL or ClickHouse password shows in any log, file or `status`.

The brokers run on their own ports and state dirs (the session broker is PLAINTEXT and shared).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.kafka import confluent_config
from streamlearn.foundation.settings import Settings, settings_env
from streamlearn.tools import broker
from streamlearn.tools.processes import WorkerProcess
from tests.chaos.harness import free_port_pair
from tests.conftest import free_port, register_secret, under_ci
from tests.integration.kafka_helpers import consume_all, produce
from tests.integration.test_pipeline import PREDICTION, simulated, txn_message

SASL_PASSWORD = register_secret(f"pw-{uuid4().hex}")
STORE_PASSWORD = register_secret(f"ch-{uuid4().hex}")


def _start(base: Settings) -> Settings:
    try:
        broker.up(base)
    except StreamlearnError as exc:
        broker.down(base)
        if under_ci():
            pytest.fail(f"the TLS broker did not start under CI: {exc}", pytrace=False)
        pytest.skip(f"the TLS test needs the local Kafka broker: {exc}")
    return base.with_overrides(kafka_ssl_cafile=broker.ca_file(base))


@pytest.fixture(scope="module")
def ssl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    base = Settings(
        kafka_bootstrap=f"127.0.0.1:{free_port_pair()}",
        state_dir=tmp_path_factory.mktemp("ssl-broker"),
        kafka_security_protocol="SSL",
    )
    try:
        yield _start(base)
    finally:
        broker.down(base)


def _secrets(settings: Settings) -> dict[str, str]:
    """Every password of this broker and its clients, by name."""
    tls = broker.ensure_broker_tls(settings.state_dir / "kafka")
    return {
        "keystore": register_secret(tls.password()),
        "sasl": SASL_PASSWORD,
        "clickhouse": STORE_PASSWORD,
    }


def _leaks(texts: dict[str, str], files: list[Path], secrets: dict[str, str]) -> list[str]:
    found = []
    for where, text in texts.items():
        found += [f"{name} in {where}" for name, s in secrets.items() if s in text]
    for path in files:
        data = path.read_bytes()
        found += [f"{name} in {path}" for name, s in secrets.items() if s.encode() in data]
    return found


def _broker_files(settings: Settings) -> list[Path]:
    """What the broker wrote (logs, data), minus its own config and password file (0600)."""
    kdir = settings.state_dir / "kafka"
    private = {kdir / "server.properties", kdir / "tls" / "keystore.password"}
    return sorted(p for p in kdir.rglob("*") if p.is_file() and p not in private)


def test_client_without_the_ca_is_refused(ssl_broker: Settings) -> None:
    untrusting = ssl_broker.model_copy(update={"kafka_ssl_cafile": None})
    client = AdminClient(confluent_config(untrusting, log_level=0))
    with pytest.raises(KafkaException):
        client.list_topics(timeout=5)
    plaintext = ssl_broker.with_overrides(kafka_security_protocol="PLAINTEXT")
    with pytest.raises(KafkaException):
        AdminClient(confluent_config(plaintext, log_level=0)).list_topics(timeout=5)
    # The one that trusts the CA gets through.
    assert AdminClient(confluent_config(ssl_broker)).list_topics(timeout=10).brokers


@pytest.mark.timeout(180)
def test_predictions_flow_over_ssl_and_no_password_leaks(
    ssl_broker: Settings, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = ssl_broker.with_overrides(
        topic_prefix=f"t{uuid4().hex[:8]}-",
        state_dir=tmp_path / "state",
        clickhouse_url=f"chdb://{tmp_path}/ch",
        partitions=2,
        web_port=free_port(),
    )
    txns = simulated(300, seed=43)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(settings, log).start()
    env = {**os.environ, **settings_env(settings), "COLUMNS": "200"}
    try:
        produce(settings, settings.topic("transactions"), [txn_message(t) for t in txns])
        worker.wait_for("predictions", len(txns), timeout=90)
        status_out = subprocess.run(
            [sys.executable, "-m", "streamlearn", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        assert worker.stop(timeout=60) == 0
    ids = {
        PREDICTION.decode(r.value)["transaction_id"]
        for r in consume_all(settings, settings.topic("predictions"))
    }
    assert ids == {t["transaction_id"] for t in txns}
    assert status_out.returncode == 0, status_out.stderr

    # A ClickHouse server URL with a password that cannot be reached: the error line names the
    # URL with the password masked.
    bad_store = {
        **env,
        "STREAMLEARN_CLICKHOUSE_URL": f"http://analyst:{STORE_PASSWORD}@127.0.0.1:9/db",
    }
    store_err = subprocess.run(
        [sys.executable, "-m", "streamlearn", "query", "SELECT 1"],
        env=bad_store,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert store_err.returncode == 4 and "analyst:***@" in store_err.stderr, store_err.stderr

    secrets = _secrets(ssl_broker)
    files = [log, *_broker_files(ssl_broker)]
    files += sorted(p for p in (tmp_path / "state").rglob("*") if p.is_file())
    captured = capfd.readouterr()  # this test's own clients (librdkafka logs to stderr)
    texts = {
        "streamlearn status": status_out.stdout + status_out.stderr,
        "streamlearn query with a bad store": store_err.stdout + store_err.stderr,
        "pytest captured output": captured.out + captured.err,
    }
    leaks = _leaks(texts, files, secrets)
    print(f"SSL: {len(ids)} predictions; {len(files)} files and {len(texts)} outputs grepped")
    assert not leaks, leaks
    kdir = ssl_broker.state_dir / "kafka"
    for private in (kdir / "server.properties", kdir / "tls" / "keystore.password"):
        assert private.stat().st_mode & 0o077 == 0, f"{private} is readable by others"


@pytest.mark.timeout(150)
def test_sasl_ssl_broker(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """SASL_SSL: SCRAM over TLS; a wrong password is refused; no password in the broker's files."""
    base = Settings(
        kafka_bootstrap=f"127.0.0.1:{free_port_pair()}",
        state_dir=tmp_path / "sasl-ssl",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="streamlearn-test",
        kafka_sasl_password=SASL_PASSWORD,
    )
    try:
        settings = _start(base).with_overrides(topic_prefix=f"u{uuid4().hex[:8]}-")
        topic = settings.topic("transactions")
        txns = simulated(20, seed=44)
        produce(settings, topic, [txn_message(t) for t in txns])
        assert len(consume_all(settings, topic)) == len(txns)
        wrong = settings.with_overrides(kafka_sasl_password="not-the-password")
        with pytest.raises(KafkaException):
            AdminClient(confluent_config(wrong, log_level=0)).list_topics(timeout=5)
    finally:
        broker.down(base)
    captured = capfd.readouterr()
    texts = {"pytest captured output": captured.out + captured.err}
    assert not _leaks(texts, _broker_files(base), _secrets(base))
