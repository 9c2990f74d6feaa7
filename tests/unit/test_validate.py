"""Contract checks on decoded records: valid ones pass, each broken rule is named."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamlearn.foundation.errors import InvalidRecord, StreamlearnError
from streamlearn.streams.validate import (
    ID_MAX_LEN,
    MAX_AMOUNT,
    MAX_TEXT_LEN,
    check_outcome,
    check_transaction,
)

NOW = 1_767_225_600_000
MAX_AGE = 400 * 86_400_000
MAX_FUTURE = 3_600_000


def txn(**overrides: Any) -> dict[str, Any]:
    record = {
        "transaction_id": "t-1",
        "event_time": NOW - 1000,
        "card_id": "card-1",
        "merchant_id": "m-1",
        "amount": 12.5,
        "currency": "EUR",
        "country": None,
        "merchant_category": "5411",
        "channel": "pos",
        "device_id": None,
    }
    return {**record, **overrides}


def outcome(**overrides: Any) -> dict[str, Any]:
    return {"transaction_id": "t-1", "is_fraud": True, "event_time": NOW, **overrides}


def check_txn(record: dict[str, Any]) -> None:
    check_transaction(record, NOW, MAX_AGE, MAX_FUTURE)


def check_out(record: dict[str, Any]) -> None:
    check_outcome(record, NOW, MAX_AGE, MAX_FUTURE)


def test_valid_records_pass() -> None:
    check_txn(txn())
    check_txn(txn(amount=0.0))
    check_txn(txn(amount=7))  # an integer amount is a number
    check_txn(txn(amount=MAX_AMOUNT))
    check_txn(txn(event_time=NOW - MAX_AGE))
    check_txn(txn(event_time=NOW + MAX_FUTURE))
    check_txn(txn(transaction_id="x" * ID_MAX_LEN, device_id="d" * MAX_TEXT_LEN))
    check_out(outcome())
    check_out(outcome(is_fraud=False, event_time=NOW - MAX_AGE))


def test_invalid_record_is_a_streamlearn_error() -> None:
    assert issubclass(InvalidRecord, StreamlearnError)


@pytest.mark.parametrize("field", ["transaction_id", "card_id", "merchant_id"])
@pytest.mark.parametrize("value", [None, "", 42, b"bytes"])
def test_missing_or_empty_ids_are_rejected(field: str, value: Any) -> None:
    with pytest.raises(InvalidRecord, match=f"{field} is missing or empty"):
        check_txn(txn(**{field: value}))
    record = txn()
    del record[field]
    with pytest.raises(InvalidRecord, match=field):
        check_txn(record)


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (float("nan"), "not finite"),
        (float("inf"), "not finite"),
        (float("-inf"), "not finite"),
        (-0.01, "negative"),
        (-1, "negative"),
        (MAX_AMOUNT * 1.0001, "above the limit"),
        (1e300, "above the limit"),
        (True, "not a number"),
        (False, "not a number"),
        ("12.5", "not a number"),
        (None, "not a number"),
    ],
)
def test_bad_amounts_are_rejected(amount: Any, reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        check_txn(txn(amount=amount))


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_double_amount_is_accepted_or_rejected_with_invalid_record(amount: float) -> None:
    ok = 0.0 <= amount <= MAX_AMOUNT
    if ok:
        check_txn(txn(amount=amount))
    else:
        with pytest.raises(InvalidRecord):
            check_txn(txn(amount=amount))


@pytest.mark.parametrize(
    ("event_time", "reason"),
    [
        (NOW - MAX_AGE - 1, "more than 400 days old"),
        (0, "days old"),
        (NOW + MAX_FUTURE + 1, "more than 3600 s in the future"),
        (float(NOW), "not an integer timestamp"),
        (str(NOW), "not an integer timestamp"),
        (True, "not an integer timestamp"),
        (None, "not an integer timestamp"),
    ],
)
def test_bad_event_times_are_rejected(event_time: Any, reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        check_txn(txn(event_time=event_time))
    with pytest.raises(InvalidRecord, match=reason):
        check_out(outcome(event_time=event_time))


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("transaction_id", ID_MAX_LEN),
        ("card_id", ID_MAX_LEN),
        ("merchant_id", ID_MAX_LEN),
        ("currency", MAX_TEXT_LEN),
        ("country", MAX_TEXT_LEN),
        ("channel", MAX_TEXT_LEN),
        ("device_id", MAX_TEXT_LEN),
    ],
)
def test_long_strings_are_rejected(field: str, limit: int) -> None:
    with pytest.raises(InvalidRecord, match=f"{field} is longer than {limit}"):
        check_txn(txn(**{field: "x" * (limit + 1)}))


def test_outcome_rules() -> None:
    for bad in (None, "", "x" * (ID_MAX_LEN + 1), "t-1\n", "t 1"):
        with pytest.raises(InvalidRecord, match="transaction_id"):
            check_out(outcome(transaction_id=bad))
    for bad in (None, 1, 0, "true"):
        with pytest.raises(InvalidRecord, match="is_fraud is not a boolean"):
            check_out(outcome(is_fraud=bad))


def test_messages_are_one_line() -> None:
    with pytest.raises(InvalidRecord) as err:
        check_txn(txn(amount=float("nan")))
    assert "\n" not in str(err.value)


# S2: the id alphabet. A newline in an id once passed validation and broke every restart
# (the learned ids were checkpointed joined by newlines).
@pytest.mark.parametrize("field", ["transaction_id", "card_id", "merchant_id"])
@pytest.mark.parametrize(
    "value", ["t\n1", "t\r1", "\x00", "t\t1", "t 1", " t", "caf\u00e9", "\u0442-1", "t\x7f"]
)
def test_ids_outside_the_alphabet_are_rejected_with_the_character(field: str, value: str) -> None:
    with pytest.raises(InvalidRecord, match=f"{field} holds .*visible ASCII") as err:
        check_txn(txn(**{field: value}))
    assert "\n" not in str(err.value)  # one line, the character escaped


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=ID_MAX_LEN + 5))
def test_an_id_is_valid_exactly_when_it_is_1_to_128_visible_ascii_characters(value: str) -> None:
    ok = len(value) <= ID_MAX_LEN and all("!" <= c <= "~" for c in value)
    if ok:
        check_txn(txn(card_id=value))
        check_out(outcome(transaction_id=value))
    else:
        with pytest.raises(InvalidRecord):
            check_txn(txn(card_id=value))
        with pytest.raises(InvalidRecord):
            check_out(outcome(transaction_id=value))
