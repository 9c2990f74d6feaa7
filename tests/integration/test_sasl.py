"""Kafka over SASL: the local broker with a SASL_PLAINTEXT listener, a worker, a producer and a
consumer authenticating with PLAIN and SCRAM; and no password in any log or in `status`.

The broker runs on its own port and state dir (the session broker is PLAINTEXT and shared).
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

USER = "streamlearn-test"
PASSWORD = register_secret(f"pw-{uuid4().hex}")  # unique, so a grep cannot match anything else


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    base = Settings(
        kafka_bootstrap=f"127.0.0.1:{free_port_pair()}",
        state_dir=tmp_path_factory.mktemp("sasl-broker"),
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
    )
    try:
        broker.up(base)
    except StreamlearnError as exc:
        broker.down(base)
        if under_ci():
            pytest.fail(f"the SASL broker did not start under CI: {exc}", pytrace=False)
        pytest.skip(f"the SASL test needs the local Kafka broker: {exc}")
    try:
        yield base
    finally:
        broker.down(base)


def _client(settings: Settings, tmp_path: Path, mechanism: str) -> Settings:
    return settings.with_overrides(
        kafka_sasl_mechanism=mechanism,
        topic_prefix=f"s{uuid4().hex[:8]}-",
        state_dir=tmp_path / "state",
        clickhouse_url=f"chdb://{tmp_path}/ch",
        partitions=2,
        web_port=free_port(),
    )


def test_wrong_password_is_refused(sasl_broker: Settings) -> None:
    wrong = sasl_broker.with_overrides(kafka_sasl_password="not-the-password")
    client = AdminClient(confluent_config(wrong, log_level=0))
    with pytest.raises(KafkaException):
        client.list_topics(timeout=5)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_predictions_flow_over_sasl(sasl_broker: Settings, tmp_path: Path, mechanism: str) -> None:
    settings = _client(sasl_broker, tmp_path, mechanism)
    txns = simulated(300, seed=41)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(settings, log).start()
    try:
        produce(settings, settings.topic("transactions"), [txn_message(t) for t in txns])
        worker.wait_for("predictions", len(txns), timeout=90)
        status_out = subprocess.run(
            [sys.executable, "-m", "streamlearn", "status"],
            env={**os.environ, **settings_env(settings), "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        worker.stop(timeout=30)
    ids = {
        PREDICTION.decode(r.value)["transaction_id"]
        for r in consume_all(settings, settings.topic("predictions"))
    }
    assert ids == {t["transaction_id"] for t in txns}
    assert status_out.returncode == 0, status_out.stderr

    # No password anywhere: the worker's log, `status`, and every file the broker wrote under
    # its state dir (logs, data) except its own config, which holds it with mode 0600.
    leaks = []
    for text, where in ((status_out.stdout + status_out.stderr, "streamlearn status"),):
        if PASSWORD in text:
            leaks.append(where)
    files = [log, *sorted(p for p in sasl_broker.state_dir.rglob("*") if p.is_file())]
    files += sorted(p for p in (tmp_path / "state").rglob("*") if p.is_file())
    config = sasl_broker.state_dir / "kafka" / "server.properties"
    checked = 0
    for path in files:
        if path == config:
            continue
        checked += 1
        if PASSWORD.encode() in path.read_bytes():
            leaks.append(str(path))
    print(f"SASL {mechanism}: {len(ids)} predictions; {checked} files and status grepped")
    assert not leaks, f"the password appears in {leaks}"
    assert config.stat().st_mode & 0o077 == 0, "server.properties is readable by others"
