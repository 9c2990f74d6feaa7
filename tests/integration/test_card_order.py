"""Per-card order and idempotence end to end: one card's events are applied in partition order,
and a transaction resent upstream (same id, new offset, among the card's last ones) is not
counted again in its card's features, nor stored or predicted twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from streamlearn.foundation.settings import Settings
from streamlearn.tools.processes import WorkerProcess
from tests.integration.test_pipeline import (
    card_totals_off,
    predictions,
    produce_transactions,
    simulated,
    stored_count,
)


@pytest.mark.timeout(150)
def test_resent_transactions_are_not_counted_twice(settings: Settings, tmp_path: Path) -> None:
    txns = simulated(400, seed=61, cards=25)  # ~16 events per card, in event-time order
    # Upstream resends of each card's latest transactions (the worker remembers the last
    # REPLAY_MEMORY ids per card; Kafka redeliveries are recognised by offset at any age).
    last: dict[str, list[dict]] = {}
    for t in txns:
        last.setdefault(t["card_id"], []).append(t)
    resent = [t for ts in last.values() for t in ts[-2:]]
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        produce_transactions(settings, txns)
        worker.wait_for("transactions", len(txns), timeout=90)
        produce_transactions(settings, resent)
        status = worker.wait_for("replayed_transactions", len(resent), timeout=60)
        assert status["replayed_transactions"] == len(resent)
        assert status["transactions"] == len(txns)
        assert stored_count(settings) == (len(txns), len(txns))
        # card_tx_total of each row = the card's earlier transactions, in send order: every
        # event applied once, in its partition's order.
        assert card_totals_off(settings, txns) == []
    per_id = Counter(p["transaction_id"] for p in predictions(settings))
    assert set(per_id) == {t["transaction_id"] for t in txns}
    assert max(per_id.values()) == 1, "a resent transaction was predicted again"
