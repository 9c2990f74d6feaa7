"""Per-card idempotence: an event already applied to its card's state is recognised, whether
Kafka delivers it again (same partition, offset not past the last applied) or upstream resends
the same transaction id at a new offset; a new event is not."""

from __future__ import annotations

from typing import Any

from streamlearn.streams.scoring import REPLAY_MEMORY, _already_applied


def card(ids: list[str], partition: int = 1, offset: int = 41) -> list[Any]:
    """A card state as the worker keeps it: features..., applied ids, [partition, offset]."""
    return [0, [0.0] * 4, [0.0] * 4, 0.0, len(ids), [], ids, [partition, offset]]


def test_kafka_redelivery_is_recognised_by_offset() -> None:
    state = card(["t1", "t2"])
    for offset in (40, 41):
        assert _already_applied(state, 1, offset, {"transaction_id": "t-other"})


def test_upstream_resend_is_recognised_by_transaction_id() -> None:
    state = card(["t1", "t2"])
    assert _already_applied(state, 1, 99, {"transaction_id": "t2"})
    assert _already_applied(state, 3, 5, {"transaction_id": "t1"})  # another partition too


def test_a_new_event_is_applied() -> None:
    state = card(["t1", "t2"])
    assert not _already_applied(state, 1, 42, {"transaction_id": "t3"})
    # The offset check is per partition: a lower offset elsewhere is a different event.
    assert not _already_applied(state, 2, 3, {"transaction_id": "t3"})


def test_the_id_memory_is_bounded() -> None:
    assert 1 <= REPLAY_MEMORY <= 64
