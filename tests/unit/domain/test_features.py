"""Event-time features: decayed windows, deterministic in event time, and late-event safe."""

from __future__ import annotations

import copy
import datetime as dt
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlearn.domain.features import (
    CARD_KEPT,
    FEATURE_NAMES,
    MERCHANT_HISTORY,
    NO_PREVIOUS_S,
    RECENT_MERCHANTS,
    CardState,
    MerchantState,
    as_dict,
    compute,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a Thursday
HOUR = 3_600_000
DAY = 24 * HOUR


_IDS = iter(range(10**9))


def txn(t: int, amount: float = 10.0, merchant: str = "m1", **extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": f"t{next(_IDS)}",
        "event_time": t,
        "amount": amount,
        "merchant_id": merchant,
        **extra,
    }


def run(
    events: list[dict[str, Any]],
) -> tuple[list[list[float]], CardState, dict[str, MerchantState]]:
    """One card's events in the given order; merchants keyed by id, as the worker keeps them."""
    card: CardState | None = None
    merchants: dict[str, MerchantState] = {}
    vectors = []
    for event in events:
        vec, card, merchants[event["merchant_id"]] = compute(
            event, card, merchants.get(event["merchant_id"])
        )
        vectors.append(vec)
    assert card is not None
    return vectors, card, merchants


def sequence(n: int = 40) -> list[dict[str, Any]]:
    gaps = [0, 30_000, 5 * 60_000, HOUR, 7 * HOUR, DAY, 3 * DAY]
    out, t = [], T0
    for i in range(n):
        t += gaps[i % len(gaps)]
        out.append(txn(t, 1.0 + (i * 37) % 500, f"m{i % 5}", channel=["pos", "ecom", None][i % 3]))
    return out


def test_feature_names_match_the_vector() -> None:
    vec, _, _ = compute(txn(T0), None, None)
    assert len(FEATURE_NAMES) == len(vec) == len(set(FEATURE_NAMES))
    assert list(as_dict(vec)) == list(FEATURE_NAMES)
    assert all(isinstance(v, float) for v in vec)
    with pytest.raises(ValueError):
        as_dict(vec[:-1])


def test_first_transaction_of_a_card() -> None:
    f = as_dict(compute(txn(T0 + 13 * HOUR + 1_800_000, 99.0, channel="ecom"), None, None)[0])
    assert f["amount"] == 99.0 and f["log_amount"] == pytest.approx(math.log1p(99.0))
    assert f["hour_of_day"] == pytest.approx(13.5)
    assert f["day_of_week"] == 3.0  # Thursday, Monday = 0
    assert f["channel_code"] == 1.0
    assert all(f[f"card_count_{w}"] == 0.0 for w in ("1h", "1d", "7d", "30d"))
    assert all(f[f"merchant_count_{w}"] == 0.0 for w in ("1h", "1d", "7d", "30d"))
    assert f["card_log_seconds_since_prev"] == pytest.approx(math.log1p(NO_PREVIOUS_S))
    assert f["card_new_merchant"] == 1.0 and f["card_tx_total"] == 0.0
    assert f["card_amount_ratio"] == 1.0 and f["card_amount_mean_30d"] == 99.0
    assert f["merchant_amount_mean_30d"] == 99.0
    assert f["merchant_amount_ratio"] == pytest.approx(99.0 / 100.0)
    assert f["merchant_fraud_rate"] == 0.0 and f["merchant_labeled_30d"] == 0.0


def test_unknown_or_missing_channel_has_its_own_code() -> None:
    codes = {
        c: as_dict(compute(txn(T0, channel=c), None, None)[0])["channel_code"]
        for c in ("pos", "ecom", "atm", "moto", "crypto", None)
    }
    assert codes == {"pos": 0.0, "ecom": 1.0, "atm": 2.0, "moto": 3.0, "crypto": 4.0, None: 4.0}


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=4_102_444_800_000))  # 1970 .. 2100
def test_calendar_features_are_utc_event_time(t: int) -> None:
    f = as_dict(compute(txn(t), None, None)[0])
    when = dt.datetime.fromtimestamp(t // 1000, dt.UTC)
    assert f["day_of_week"] == when.weekday()
    assert f["hour_of_day"] == pytest.approx(when.hour + when.minute / 60 + when.second / 3600)


def test_second_transaction_one_hour_later_sees_decayed_windows() -> None:
    (_, second), _, _ = run([txn(T0, 40.0), txn(T0 + HOUR, 5.0)])
    f = as_dict(second)
    for w, tau_h in (("1h", 1), ("1d", 24), ("7d", 168), ("30d", 720)):
        assert f[f"card_count_{w}"] == pytest.approx(math.exp(-1 / tau_h), rel=1e-12)
        assert f[f"card_amount_sum_{w}"] == pytest.approx(40.0 * math.exp(-1 / tau_h), rel=1e-12)
        assert f[f"merchant_count_{w}"] == pytest.approx(math.exp(-1 / tau_h), rel=1e-12)
    assert f["card_amount_mean_30d"] == pytest.approx(40.0)
    assert f["card_log_seconds_since_prev"] == pytest.approx(math.log1p(3600.0))
    assert f["card_amount_ratio"] == pytest.approx(5.0 / 41.0)
    assert f["card_new_merchant"] == 0.0 and f["card_tx_total"] == 1.0


def test_simultaneous_events_count_undecayed() -> None:
    vectors, card, _ = run([txn(T0), txn(T0), txn(T0)])
    assert as_dict(vectors[2])["card_count_1h"] == 2.0
    assert card.counts == (3.0,) * 4 and card.last_t == T0


def test_late_event_does_not_move_last_t_backwards() -> None:
    _, card, merchants = run([txn(T0 + 2 * HOUR), txn(T0 + HOUR)])
    assert card.last_t == T0 + 2 * HOUR
    assert merchants["m1"].last_t == T0 + 2 * HOUR


def test_late_event_sees_the_state_at_the_newest_time_and_is_added_decayed() -> None:
    late_vectors, late_card, _ = run([txn(T0 + 2 * HOUR, 7.0), txn(T0 + HOUR, 3.0)])
    f = as_dict(late_vectors[1])
    assert f["card_count_1h"] == 1.0  # the newer event, at the reference time, undecayed
    assert f["card_log_seconds_since_prev"] == pytest.approx(math.log1p(NO_PREVIOUS_S))
    # Once both are in, the aggregates equal those of the in-order sequence.
    _, sorted_card, _ = run([txn(T0 + HOUR, 3.0), txn(T0 + 2 * HOUR, 7.0)])
    assert late_card.last_t == sorted_card.last_t
    assert late_card.counts == pytest.approx(sorted_card.counts, rel=1e-12)
    assert late_card.sums == pytest.approx(sorted_card.sums, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 60 * DAY), st.floats(0.0, 1e6, allow_nan=False)),
        min_size=1,
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_aggregates_do_not_depend_on_arrival_order(
    events: list[tuple[int, float]], rnd: Any
) -> None:
    ordered = [txn(T0 + t, a) for t, a in sorted(events)]
    shuffled = list(ordered)
    rnd.shuffle(shuffled)
    _, c1, m1 = run(ordered)
    _, c2, m2 = run(shuffled)
    assert c1.last_t == c2.last_t == T0 + max(t for t, _ in events)
    for name in ("counts", "sums"):
        assert getattr(c2, name) == pytest.approx(getattr(c1, name), rel=1e-9, abs=1e-9)
        assert getattr(m2["m1"], name) == pytest.approx(getattr(m1["m1"], name), rel=1e-9, abs=1e-9)
    assert c1.total == c2.total == len(events)


def test_card_new_merchant_tracks_the_recent_merchants() -> None:
    events = [txn(T0 + i * 60_000, merchant=m) for i, m in enumerate(["a", "b", "a", "c"])]
    vectors, card, _ = run(events)
    assert [as_dict(v)["card_new_merchant"] for v in vectors] == [1.0, 1.0, 0.0, 1.0]
    assert card.recent == ("b", "a", "c")  # most recent last, no duplicates


def test_a_merchant_is_new_again_once_it_leaves_the_recent_list() -> None:
    others = [f"o{i}" for i in range(RECENT_MERCHANTS)]
    names = ["a", *others, "a"]
    vectors, card, _ = run([txn(T0 + i * 60_000, merchant=m) for i, m in enumerate(names)])
    assert as_dict(vectors[-1])["card_new_merchant"] == 1.0
    assert len(card.recent) == RECENT_MERCHANTS
    names = ["a", *others[:-1], "a"]
    vectors, _, _ = run([txn(T0 + i * 60_000, merchant=m) for i, m in enumerate(names)])
    assert as_dict(vectors[-1])["card_new_merchant"] == 0.0


def test_seconds_since_previous() -> None:
    vectors, _, _ = run([txn(T0), txn(T0 + 30_000), txn(T0 + 30_000), txn(T0 + 30_000 + DAY)])
    got = [as_dict(v)["card_log_seconds_since_prev"] for v in vectors]
    assert got == pytest.approx(
        [math.log1p(NO_PREVIOUS_S), math.log1p(30.0), 0.0, math.log1p(86_400.0)]
    )


def test_merchant_state_is_independent_per_key() -> None:
    vectors, _, merchants = run(
        [txn(T0, 100.0, "busy"), txn(T0 + 1, 100.0, "busy"), txn(T0 + 2, 1.0, "quiet")]
    )
    quiet = as_dict(vectors[2])
    assert all(quiet[f"merchant_count_{w}"] == 0.0 for w in ("1h", "1d", "7d", "30d"))
    assert quiet["merchant_amount_mean_30d"] == 1.0
    assert quiet["card_count_1h"] == pytest.approx(2.0, rel=1e-6)  # the card saw both
    assert merchants["busy"].counts[0] == pytest.approx(2.0, rel=1e-6)
    assert merchants["quiet"].counts == (1.0,) * 4


def test_merchant_history_is_passed_through_in_its_order() -> None:
    values = tuple(float(k) for k in range(len(MERCHANT_HISTORY)))
    f = as_dict(compute(txn(T0), None, None, values)[0])
    assert [f[name] for name in MERCHANT_HISTORY] == list(values)


def test_card_plain_windows_count_and_average_the_payments_before_it() -> None:
    card = None
    for at, amount in ((T0 - 20 * DAY, 100.0), (T0 - 3 * DAY, 10.0), (T0 - HOUR, 30.0)):
        _, card, _ = compute(txn(at, amount), card, None)
    f = as_dict(compute(txn(T0, 999.0), card, None)[0])
    assert (f["card_n_1d"], f["card_n_7d"], f["card_n_30d"]) == (1.0, 2.0, 3.0)
    assert (f["card_mean_1d"], f["card_mean_7d"]) == (30.0, 20.0)
    assert f["card_mean_30d"] == pytest.approx(140.0 / 3)
    fresh = as_dict(compute(txn(T0), None, None)[0])
    assert fresh["card_n_30d"] == 0.0 and fresh["card_mean_30d"] == 0.0


def test_card_keeps_its_last_30_days_in_order_even_with_late_payments() -> None:
    card = None
    for at in (T0, T0 + 40 * DAY, T0 + 39 * DAY, T0 + 41 * DAY):
        _, card, _ = compute(txn(at), card, None)
    assert card is not None and card.times == (T0 + 39 * DAY, T0 + 40 * DAY, T0 + 41 * DAY)
    for k in range(300):
        _, card, _ = compute(txn(T0 + 42 * DAY + k * 1000), card, None)
    assert len(card.times) == CARD_KEPT and card.times[-1] == T0 + 42 * DAY + 299_000


def test_card_state_from_before_v2_has_no_recent_payments() -> None:
    old = [1.0, [0.0] * 4, [0.0] * 4, 5.0, 3, ["m"], ["t"], [0, 7]]
    assert CardState.from_json(old).times == ()
    _, card, _ = compute(txn(T0), None, None)
    assert CardState.from_json(card.to_json()) == card


def test_compute_does_not_mutate_the_states_it_is_given() -> None:
    _, card, merchants = run(sequence(10))
    card_before, merchant_before = copy.deepcopy(card), copy.deepcopy(merchants["m0"])
    compute(txn(T0 + 90 * DAY, merchant="m0"), card, merchants["m0"])
    compute(txn(T0 - DAY, merchant="m0"), card, merchants["m0"])
    assert card == card_before and merchants["m0"] == merchant_before


def test_fresh_states_are_empty() -> None:
    assert CardState().to_json() == [None, [0.0] * 4, [0.0] * 4, None, 0, [], [], [-1, -1], [], []]
    assert MerchantState().to_json() == [None, [0.0] * 4, [0.0] * 4]


def test_replay_from_fresh_state_gives_identical_vectors() -> None:
    events = sequence()
    first, card1, merchants1 = run(events)
    second, card2, merchants2 = run(copy.deepcopy(events))
    assert first == second  # exact, not approximate
    assert card1 == card2 and merchants1 == merchants2


def test_features_ignore_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    events = sequence()
    now, _, _ = run(events)
    future = 4_000_000_000.0
    monkeypatch.setattr(time, "time", lambda: future)
    monkeypatch.setattr(time, "time_ns", lambda: int(future * 1e9))
    monkeypatch.setattr(time, "monotonic", lambda: future)
    later, _, _ = run(events)
    assert now == later


def test_state_survives_a_json_round_trip() -> None:
    """The worker keeps state in a changelog: a JSON-restored state continues identically."""
    import json

    events = sequence()
    head, tail = events[:25], events[25:]
    full, _, _ = run(events)
    _, card, merchants = run(head)
    card = CardState.from_json(json.loads(json.dumps(card.to_json())))
    merchants = {
        k: MerchantState.from_json(json.loads(json.dumps(m.to_json())))
        for k, m in merchants.items()
    }
    rest = []
    for e in tail:
        vec, card, merchants[e["merchant_id"]] = compute(e, card, merchants.get(e["merchant_id"]))
        rest.append(vec)
    assert full[25:] == rest
