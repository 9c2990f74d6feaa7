"""S4: a prediction Kafka refuses stops the worker without losing what it had scored.

The predictions topic first refuses every message (max.message.bytes far below a Prediction):
the batch's deliveries fail, the writer writes neither rows nor changelog for it and acks
nothing, the worker stops. With the topic fixed, a restarted worker recovers the card state
from the changelog (which never saw those events), scores them again, and every transaction
ends with exactly one row and at least one prediction — none is skipped as "already applied".
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from streamlearn.foundation.kafka import confluent_config, ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.tools.processes import WorkerProcess
from tests.integration.kafka_helpers import wait_until
from tests.integration.test_pipeline import (
    predictions,
    produce_transactions,
    scalar_row,
    simulated,
)


def set_max_bytes(settings: Settings, topic: str, value: int) -> None:
    admin = AdminClient(confluent_config(settings))
    resource = ConfigResource(
        "topic",
        topic,
        incremental_configs=[
            ConfigEntry(
                "max.message.bytes", str(value), incremental_operation=AlterConfigOpType.SET
            )
        ],
    )
    for fut in admin.incremental_alter_configs([resource]).values():
        fut.result(timeout=30)


def test_a_refused_prediction_loses_no_transaction(settings: Settings, tmp_path: Path) -> None:
    ensure_topics(settings)
    topic = settings.topic("predictions")
    set_max_bytes(settings, topic, 64)  # smaller than any Prediction batch
    txns = simulated(40, seed=404, cards=10)  # few cards: their state matters on the replay
    one = WorkerProcess(settings, tmp_path / "worker-1.log").start()
    produce_transactions(settings, txns[:20])
    wait_until(
        lambda: one.proc is not None and one.proc.poll() is not None,
        timeout=90,
        what="the worker to stop on the refused deliveries",
    )
    log = (tmp_path / "worker-1.log").read_text()
    assert "Kafka refused" in log or "delivery" in log.lower(), log[-2000:]

    set_max_bytes(settings, topic, 1_000_000)
    two = WorkerProcess(settings, tmp_path / "worker-2.log").start()
    try:
        produce_transactions(settings, txns[20:])
        two.wait_for("transactions", 40, timeout=90)
        time.sleep(2)
        rows = scalar_row(
            settings,
            "SELECT count(), uniqExact(transaction_id) FROM streamlearn.transactions FINAL",
        )
        assert rows == (40, 40)
        seen = Counter(p["transaction_id"] for p in predictions(settings))
        assert set(seen) == {t["transaction_id"] for t in txns}
        assert two.status()["replayed_transactions"] == 0  # none skipped as already applied
    finally:
        two.stop()
