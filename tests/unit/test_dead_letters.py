"""Dead letters without a broker: the log is a summary per reason (S17), rows are bounded, the
bounded form's headers say what was cut. With the broker: tests/integration/test_dead_letters.py.
"""

from __future__ import annotations

import logging

import pytest

from streamlearn.foundation.dead_letters import (
    FALLBACK_VALUE_BYTES,
    DeadLetter,
    DeadLetterRows,
    LogSummary,
    bounded_headers,
    headers,
    reason_of,
    rows_token,
)

LOGGER = "streamlearn.foundation.dead_letters"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def letter(offset: int, error: str = "amount is negative (-3.0)", stage: str = "validate"):
    return DeadLetter("transactions", offset % 4, offset, stage, error, b"card-1", b"x" * 10)


def test_a_storm_of_dead_letters_is_one_line_per_reason_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    summary = LogSummary(interval_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for i in range(5000):  # 5,000 bad amounts and 3,000 bad ids within 9 s
            clock.t = 1000.0 + i * 9.0 / 5000
            summary.note(letter(i, f"amount is negative (-{i}.5)"))
            if i < 3000:
                summary.note(letter(i, f"card_id holds '\\n' at {i}"))
        first = [r.getMessage() for r in caplog.records]
        clock.t = 1010.5
        summary.emit_due()
        window = [r.getMessage() for r in caplog.records][len(first) :]
        for i in range(100):  # the storm goes on: no new first line, one summary again
            clock.t = 1011.0 + i * 0.05
            summary.note(letter(i))
        clock.t = 1021.0
        summary.emit_due()
        later = [r.getMessage() for r in caplog.records][len(first) + len(window) :]
    assert len(first) == 2, first  # the first letter of each reason, at once
    assert "transactions[0]@0 (validate): amount is negative (-0.5)" in first[0]
    assert len(window) == 2, window
    assert any("4999 more validate: amount is negative" in line for line in window)
    assert any("2999 more validate: card_id holds" in line for line in window)
    assert len(later) == 1 and "100 more validate: amount is negative" in later[0], later


def test_a_quiet_reason_is_forgotten_and_logged_at_once_when_it_comes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    summary = LogSummary(interval_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        summary.note(letter(1))
        clock.t += 11
        summary.emit_due()  # nothing more came: no summary line
        clock.t += 11
        summary.emit_due()
        summary.note(letter(2))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("dead letter transactions" in line for line in lines), lines


def test_reasons_group_letters_that_differ_only_in_numbers_or_detail() -> None:
    assert reason_of("validate", "amount is negative (-3.0)") == reason_of(
        "validate", "amount is negative (-12.25)"
    )
    assert reason_of("decode", "unknown fingerprint 0x1234: not registered") == (
        "decode: unknown fingerprint NxN"
    )
    assert reason_of("validate", "x") != reason_of("decode", "x")


def test_the_bounded_form_says_what_was_cut() -> None:
    big = DeadLetter("transactions", 1, 42, "decode", "e" * 5000, b"k" * 1000, b"v" * 70_000)
    plain = dict(headers(big))
    assert len(plain["error"]) == 2000 and plain["source_offset"] == b"42"
    bounded = dict(bounded_headers(big, "Broker: Message size too large"))
    assert bounded["truncated"] == b"true"
    assert bounded["original_value_size"] == b"70000" and bounded["original_key_size"] == b"1000"
    assert bounded["truncated_reason"] == b"Broker: Message size too large"
    assert sum(len(v or b"") for v in bounded.values()) < 3000  # headers bounded too
    small = DeadLetter("transactions", 1, 43, "decode", "e", b"k", b"v" * FALLBACK_VALUE_BYTES)
    assert dict(bounded_headers(small, "batch refused"))["truncated"] == b"false"


def test_rows_are_bounded_and_a_failed_store_puts_them_back() -> None:
    rows = DeadLetterRows(max_rows=3)
    for i in range(5):
        rows.keep(letter(i))
    assert len(rows) == 3 and rows.dropped == 2
    taken = rows.take()
    assert [r[3] for r in taken] == [2, 3, 4] and len(rows) == 0
    rows.keep(letter(9))
    rows.put_back(taken)
    assert [r[3] for r in rows.take()] == [3, 4, 9] and rows.dropped == 3  # oldest out
    assert taken[0][6] == "card-1" and taken[0][7] == 10  # key text, value size


def test_the_rows_token_follows_the_origins() -> None:
    a = DeadLetterRows()
    for i in range(3):
        a.keep(letter(i))
    rows = a.take()
    later = [[r[0].replace(year=2030), *r[1:]] for r in rows]  # the same letters, redone later
    assert rows_token(rows) == rows_token(later)
    assert rows_token(rows) != rows_token(rows[:2])
