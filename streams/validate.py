"""Contract rules a decoded record must meet before it is scored or learned from (pure)."""

from __future__ import annotations

import math
import re
from typing import Any

from streamlearn.foundation.errors import InvalidRecord

# Ids (transaction_id, card_id, merchant_id): 1 to 128 visible ASCII characters, '!' to '~'.
# No spaces, control characters (a newline would split a line-based file or log line) or
# non-ASCII look-alikes: an id is a key in state, logs, checkpoints and SQL filters.
ID_MAX_LEN = 128
ID_PATTERN = re.compile(rf"[\x21-\x7e]{{1,{ID_MAX_LEN}}}")
MAX_TEXT_LEN = 256  # the optional descriptive strings (currency, country, channel, ...)
MAX_AMOUNT = 1e9


def _require_id(record: dict[str, Any], field: str) -> None:
    value = record.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidRecord(f"{field} is missing or empty")
    if len(value) > ID_MAX_LEN:
        raise InvalidRecord(f"{field} is longer than {ID_MAX_LEN} characters")
    if ID_PATTERN.fullmatch(value) is None:
        bad = next(c for c in value if not "\x21" <= c <= "\x7e")
        raise InvalidRecord(f"{field} holds {bad!a}: ids are visible ASCII characters ('!' to '~')")


def _check_time(value: Any, now_ms: int, max_age_ms: int, max_future_ms: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRecord(f"{what} is not an integer timestamp in ms")
    if value < now_ms - max_age_ms:
        raise InvalidRecord(f"{what} {value} is more than {max_age_ms // 86_400_000} days old")
    if value > now_ms + max_future_ms:
        raise InvalidRecord(f"{what} {value} is more than {max_future_ms // 1000} s in the future")


def check_transaction(
    record: dict[str, Any], now_ms: int, max_age_ms: int, max_future_ms: int
) -> None:
    """Raise InvalidRecord with the reason if the transaction cannot be scored."""
    for field in ("transaction_id", "card_id", "merchant_id"):
        _require_id(record, field)
    amount = record.get("amount")
    if not isinstance(amount, float | int) or isinstance(amount, bool):
        raise InvalidRecord("amount is not a number")
    if not math.isfinite(amount):
        raise InvalidRecord(f"amount is not finite ({amount})")
    if amount < 0:
        raise InvalidRecord(f"amount is negative ({amount})")
    if amount > MAX_AMOUNT:
        raise InvalidRecord(f"amount {amount} is above the limit {MAX_AMOUNT:.0f}")
    _check_time(record.get("event_time"), now_ms, max_age_ms, max_future_ms, "event_time")
    for field in ("currency", "country", "merchant_category", "channel", "device_id"):
        value = record.get(field)
        if value is not None and len(value) > MAX_TEXT_LEN:
            raise InvalidRecord(f"{field} is longer than {MAX_TEXT_LEN} characters")


def check_outcome(record: dict[str, Any], now_ms: int, max_age_ms: int, max_future_ms: int) -> None:
    """Raise InvalidRecord with the reason if the outcome cannot be used."""
    _require_id(record, "transaction_id")
    if not isinstance(record.get("is_fraud"), bool):
        raise InvalidRecord("is_fraud is not a boolean")
    _check_time(record.get("event_time"), now_ms, max_age_ms, max_future_ms, "event_time")


def outcome_max_age_days(max_event_age_days: float, label_horizon_days: float) -> float:
    """How old an outcome's own event time may be: outcomes come up to the label horizon after
    their transaction (and are stored as expired after it), so that much older than a
    transaction's allowed age."""
    return max_event_age_days + label_horizon_days
