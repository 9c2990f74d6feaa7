"""The validation clock: wall time live, the stream's own time for a replayed history."""

from __future__ import annotations

import pytest

from streamlearn.foundation.errors import InvalidRecord
from streamlearn.foundation.settings import Settings
from streamlearn.streams.clock import EventClock
from streamlearn.streams.validate import check_outcome, check_transaction

DAY = 86_400_000
WALL = 1_767_225_600_000  # 2026-01-01
MAX_AGE = 400 * DAY
MAX_FUTURE = 3_600_000
TWO_YEARS_AGO = WALL - 730 * DAY


def txn(event_time: object) -> dict[str, object]:
    return {
        "transaction_id": "t-1",
        "event_time": event_time,
        "card_id": "c-1",
        "merchant_id": "m-1",
        "amount": 10.0,
    }


def check(clock: EventClock, event_time: object, partition: int = 0) -> None:
    now = clock.now(partition, event_time, WALL)
    check_transaction(txn(event_time), now, MAX_AGE, MAX_FUTURE)


def test_wall_clock_refuses_history_as_before() -> None:
    clock = EventClock("wall", MAX_FUTURE)
    assert clock.now(0, TWO_YEARS_AGO, WALL) == WALL
    with pytest.raises(InvalidRecord, match="days old"):
        check(clock, TWO_YEARS_AGO)


def test_event_clock_accepts_history_and_ages_from_the_newest_event_seen() -> None:
    clock = EventClock("event", MAX_FUTURE)
    check(clock, TWO_YEARS_AGO)
    check(clock, TWO_YEARS_AGO + 3 * DAY)  # a night (or days) between events is no future
    assert clock.newest == {0: TWO_YEARS_AGO + 3 * DAY}
    check(clock, TWO_YEARS_AGO + DAY)  # late, within the age limit of the stream's clock
    assert clock.newest == {0: TWO_YEARS_AGO + 3 * DAY}  # a late event does not move it back
    with pytest.raises(InvalidRecord, match="400 days old"):
        check(clock, TWO_YEARS_AGO + 3 * DAY - MAX_AGE - 1)
    # Each partition has its own clock: the other one has seen nothing yet.
    check(clock, TWO_YEARS_AGO - 300 * DAY, partition=1)


def test_event_clock_keeps_the_wall_clocks_future_limit() -> None:
    clock = EventClock("event", MAX_FUTURE)
    check(clock, TWO_YEARS_AGO)
    check(clock, WALL + MAX_FUTURE)  # as far ahead as live traffic may be
    with pytest.raises(InvalidRecord, match="in the future"):
        check(clock, WALL + MAX_FUTURE + 1)
    assert clock.newest == {0: WALL + MAX_FUTURE}  # a refused time never moves the clock


def test_event_clock_leaves_a_bad_time_to_the_validator() -> None:
    clock = EventClock("event", MAX_FUTURE)
    for bad in ("yesterday", None, True, 1.5):
        assert clock.now(0, bad, WALL) == WALL
        with pytest.raises(InvalidRecord, match="not an integer"):
            check(clock, bad)
    assert clock.newest == {}


def test_outcomes_of_history_pass_with_the_event_clock() -> None:
    clock = EventClock("event", MAX_FUTURE)
    outcome = {"transaction_id": "t-1", "is_fraud": True, "event_time": TWO_YEARS_AGO}
    check_outcome(outcome, clock.now(3, TWO_YEARS_AGO, WALL), MAX_AGE, MAX_FUTURE)
    with pytest.raises(InvalidRecord, match="days old"):
        check_outcome(outcome, WALL, MAX_AGE, MAX_FUTURE)


def test_the_setting_and_a_bad_mode() -> None:
    assert Settings().clock == "wall"
    assert Settings(clock="event").clock == "event"
    with pytest.raises(ValueError, match="wall"):
        EventClock("replay", MAX_FUTURE)
