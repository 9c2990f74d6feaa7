"""Per-card idempotence: an event already applied to its card's state is recognised, whether
Kafka delivers it again (same partition, offset not past the last applied) or upstream resends
the same transaction id at a new offset; a new event is not. And the changelog form."""

from __future__ import annotations

from streamlearn.domain.features import REPLAY_MEMORY, CardState, MerchantState, compute


def card(ids: list[str], partition: int = 1, offset: int = 41) -> CardState:
    return CardState(0.0, (0.0,) * 4, (0.0,) * 4, 0.0, len(ids), (), tuple(ids), partition, offset)


def test_kafka_redelivery_is_recognised_by_offset() -> None:
    state = card(["t1", "t2"])
    for offset in (40, 41):
        assert state.already_applied(1, offset, {"transaction_id": "t-other"})


def test_upstream_resend_is_recognised_by_transaction_id() -> None:
    state = card(["t1", "t2"])
    assert state.already_applied(1, 99, {"transaction_id": "t2"})
    assert state.already_applied(3, 5, {"transaction_id": "t1"})  # another partition too


def test_a_new_event_is_applied() -> None:
    state = card(["t1", "t2"])
    assert not state.already_applied(1, 42, {"transaction_id": "t3"})
    # The offset check is per partition: a lower offset elsewhere is a different event.
    assert not state.already_applied(2, 3, {"transaction_id": "t3"})


def test_the_id_memory_is_bounded_and_the_origin_recorded() -> None:
    assert 1 <= REPLAY_MEMORY <= 64
    state = None
    for i in range(REPLAY_MEMORY + 5):
        txn = {
            "transaction_id": f"t{i}",
            "event_time": 1_000 + i,
            "amount": 1.0,
            "merchant_id": "m",
        }
        _, state, _ = compute(txn, state, None, origin=(2, 100 + i))
    assert state is not None and len(state.applied) == REPLAY_MEMORY
    assert (state.partition, state.offset) == (2, 100 + REPLAY_MEMORY + 4)


def test_states_round_trip_through_their_changelog_form() -> None:
    txn = {"transaction_id": "t", "event_time": 5_000, "amount": 3.0, "merchant_id": "m"}
    _, c, m = compute(txn, None, None, origin=(1, 9))
    assert CardState.from_json(c.to_json()) == c
    assert MerchantState.from_json(m.to_json()) == m
    # A changelog written before the origin was kept (7 slots) still loads.
    assert CardState.from_json(c.to_json()[:7]).offset == -1
