"""The only writer of the dead-letter topic: raw bytes kept, reason and origin in headers.

A letter the topic refuses whole (larger than its max.message.bytes, or any produce error) is
sent once more in a bounded form: the first FALLBACK_VALUE_BYTES of the value, the reason,
the origin and the original size, with a `truncated` header. If even that fails it is counted
and logged; the worker goes on either way. Every letter is also kept as a row for
`streamlearn.dead_letters` (store_rows), and logging is a summary per reason and interval.
A letter sent with a batch's `Deliveries` is reported there once it is durable in either
form (or given up on): the batch is acked only after its dead letters, and never stopped by
one.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from confluent_kafka import KafkaException

from streamlearn.foundation.deliveries import Deliveries, TrackedProducer
from streamlearn.foundation.kafka import produce, producer_config
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store.dedup import batch_token

log = logging.getLogger(__name__)

FALLBACK_VALUE_BYTES = 1024  # of the original value, in the bounded form
FALLBACK_KEY_BYTES = 256
ERROR_BYTES = 2000  # the error header and column
SUMMARY_INTERVAL_S = 10.0
MAX_ROWS = 10_000  # rows waiting for the store; the oldest go first (counted)
TABLE = "dead_letters"
ROW_COLUMNS = (
    "time",
    "source_topic",
    "source_partition",
    "source_offset",
    "stage",
    "error",
    "key",
    "value_size",
)
Header = tuple[str, str | bytes | None]


@dataclass
class DeadLetter:
    """One rejected message and why."""

    source_topic: str
    partition: int
    offset: int
    stage: str  # decode, validate, score, learn, model
    error: str
    key: bytes | None
    value: bytes | None

    @property
    def origin(self) -> str:
        return f"{self.source_topic}[{self.partition}]@{self.offset}"


def reason_of(stage: str, error: str) -> str:
    """What letters have in common: the error with numbers as N, up to its first detail
    (the grouping of the report's dead-letter chart)."""
    text = re.sub(r"[0-9][0-9.eE+-]*", "N", error)
    text = re.split(r"[:(\[{]", text, maxsplit=1)[0].strip()
    return f"{stage}: {text[:60]}"


class LogSummary:
    """One log line per reason per interval: a storm of bad input is a few lines, not one each.

    The first event of a new reason is logged at once; the others are counted and logged as
    one line with the count when the interval ends (checked on each note and by emit_due).
    """

    def __init__(
        self, interval_s: float = SUMMARY_INTERVAL_S, clock=time.monotonic, level=logging.WARNING
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.level = level
        self._window_start = clock()
        self._more: dict[str, tuple[int, str]] = {}  # reason -> (count since logged, example)

    def note(self, letter: DeadLetter, what: str = "dead letter", detail: str = "") -> None:
        self.emit_due()
        reason = reason_of(letter.stage, detail or letter.error)
        if what != "dead letter":
            reason = f"{what}: {reason}"
        if reason not in self._more:
            text = (detail or letter.error)[:300]
            log.log(self.level, "%s %s (%s): %s", what, letter.origin, letter.stage, text)
            self._more[reason] = (0, letter.origin)
        else:
            count, _ = self._more[reason]
            self._more[reason] = (count + 1, letter.origin)

    def emit_due(self) -> None:
        now = self.clock()
        if now - self._window_start < self.interval_s:
            return
        for reason, (count, example) in self._more.items():
            if count:
                log.log(
                    self.level,
                    "dead letters: %d more %s in the last %.0fs (latest %s)",
                    count,
                    reason,
                    now - self._window_start,
                    example,
                )
        # A reason still arriving stays known (no new first line); a quiet one is forgotten.
        self._more = {r: (0, ex) for r, (count, ex) in self._more.items() if count}
        self._window_start = now


class DeadLetterRows:
    """The rows of streamlearn.dead_letters not stored yet: the newest MAX_ROWS (bounded)."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self._rows: deque[list[Any]] = deque(maxlen=max_rows)
        self.dropped = 0  # pushed out before the store took them

    def keep(self, letter: DeadLetter) -> None:
        if len(self._rows) == self._rows.maxlen:
            self.dropped += 1
        key = (letter.key or b"")[:FALLBACK_KEY_BYTES].decode("utf-8", "replace")
        self._rows.append(
            [
                dt.datetime.now(dt.UTC),
                letter.source_topic,
                letter.partition,
                letter.offset,
                letter.stage,
                letter.error[:ERROR_BYTES],
                key,
                len(letter.value or b""),
            ]
        )

    def take(self) -> list[list[Any]]:
        """The rows kept since the last take."""
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def put_back(self, rows: Sequence[list[Any]]) -> None:
        """Rows whose insert did not complete: kept for the next try (the oldest go first)."""
        merged = [*rows, *self._rows]
        self.dropped += max(0, len(merged) - (self._rows.maxlen or len(merged)))
        self._rows.clear()
        self._rows.extend(merged)

    def __len__(self) -> int:
        return len(self._rows)


@dataclass
class DeadLetterWriter:
    """Produces dead letters and counts them by stage; flush() makes them durable."""

    settings: Settings
    counts: dict[str, int] = field(default_factory=dict)
    truncated: int = 0  # sent again in the bounded form
    undeliverable: int = 0  # not even the bounded form could be sent (logged, in the rows)
    rows: DeadLetterRows = field(default_factory=DeadLetterRows)
    summary: LogSummary = field(default_factory=LogSummary)
    failures: LogSummary = field(default_factory=lambda: LogSummary(level=logging.ERROR))
    _bounded_producer: TrackedProducer | None = None

    def __post_init__(self) -> None:
        self.topic = self.settings.topic("dead-letters")
        self._tracked = TrackedProducer(
            producer_config(
                self.settings,
                **{"enable.idempotence": True, "linger.ms": 5, "message.max.bytes": 16_000_000},
            ),
            "dead-letters",
        )
        self._producer = self._tracked.producer

    def send(self, letter: DeadLetter, deliveries: Deliveries | None = None) -> None:
        """Produce one dead letter; with `deliveries`, one report goes there when it is
        durable whole or bounded (or could not be sent at all: logged and counted)."""
        self.counts[letter.stage] = self.counts.get(letter.stage, 0) + 1
        self.summary.note(letter)
        self.rows.keep(letter)
        callback = partial(self._delivered, letter, deliveries)
        try:
            produce(
                self._producer,
                self.topic,
                letter.value,
                key=letter.key,
                headers=headers(letter),
                on_delivery=callback,
            )
        except KafkaException as exc:  # refused before it left, e.g. larger than the client allows
            self._send_bounded(letter, _kafka_reason(exc), deliveries)

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every dead letter is acknowledged (whole or bounded).

        Raises only if the broker does not acknowledge within the timeout (an outage, not
        a poison message): a letter the topic refuses never stops the caller.
        """
        remaining = self._producer.flush(timeout)
        if self._bounded_producer is not None:
            remaining += self._bounded_producer.producer.flush(timeout)
        self.summary.emit_due()
        self.failures.emit_due()
        if remaining:
            raise RuntimeError(
                f"dead-letter delivery: {remaining} not acknowledged within {timeout:.0f}s "
                f"(is Kafka at {self.settings.kafka_bootstrap} up?)"
            )

    def close(self, timeout: float = 30.0) -> None:
        self._tracked.close(timeout)
        if self._bounded_producer is not None:
            self._bounded_producer.close(timeout)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    # -- internals (delivery reports run on the producers' poller threads) ------------------
    def _delivered(
        self, letter: DeadLetter, deliveries: Deliveries | None, err: Any, msg: Any
    ) -> None:
        if err is not None:
            self._send_bounded(letter, str(err), deliveries)
        elif deliveries is not None:
            deliveries.report(None, msg)

    def _bounded(self) -> TrackedProducer:
        """The producer of bounded forms: one message per request, so a bounded form never
        shares a batch (and the broker's size check) with an oversized letter."""
        if self._bounded_producer is None:
            self._bounded_producer = TrackedProducer(
                producer_config(
                    self.settings,
                    **{"enable.idempotence": True, "linger.ms": 0, "batch.num.messages": 1},
                ),
                "dead-letters-bounded",
            )
        return self._bounded_producer

    def _send_bounded(self, letter: DeadLetter, reason: str, deliveries: Deliveries | None) -> None:
        """The letter once more, bounded: truncated value and key, reason, original sizes."""
        self.truncated += 1
        self.summary.note(letter, "dead letter sent truncated", f"refused whole: {reason}")
        value = letter.value[:FALLBACK_VALUE_BYTES] if letter.value is not None else None
        key = letter.key[:FALLBACK_KEY_BYTES] if letter.key is not None else None
        try:
            produce(
                self._bounded().producer,
                self.topic,
                value,
                key=key,
                headers=bounded_headers(letter, reason),
                on_delivery=partial(self._lost, letter, deliveries),
            )
        except KafkaException as exc:
            self._lost(letter, deliveries, _kafka_reason(exc), None)

    def _lost(self, letter: DeadLetter, deliveries: Deliveries | None, err: Any, msg: Any) -> None:
        if err is not None:
            self.undeliverable += 1
            # Still in streamlearn.dead_letters (its row) and in the failure log summary.
            self.failures.note(letter, "dead letter lost, even truncated", str(err))
        if deliveries is not None:
            deliveries.report(None, msg)  # dealt with: the batch goes on either way


def headers(letter: DeadLetter) -> list[Header]:
    """The contract's headers: error, stage and origin (the error cut to ERROR_BYTES)."""
    return [
        ("error", letter.error.encode("utf-8", "replace")[:ERROR_BYTES]),
        ("stage", letter.stage.encode()),
        ("source_topic", letter.source_topic.encode()),
        ("source_partition", str(letter.partition).encode()),
        ("source_offset", str(letter.offset).encode()),
        ("failed_at", str(int(time.time() * 1000)).encode()),
    ]


def bounded_headers(letter: DeadLetter, reason: str) -> list[Header]:
    """The headers of the bounded form: the contract's, plus why and how it was cut."""
    cut = (
        len(letter.value or b"") > FALLBACK_VALUE_BYTES
        or len(letter.key or b"") > FALLBACK_KEY_BYTES
    )
    return [
        *headers(letter),
        ("truncated", b"true" if cut else b"false"),
        ("truncated_reason", reason.encode("utf-8", "replace")[:500]),
        ("original_value_size", str(len(letter.value or b"")).encode()),
        ("original_key_size", str(len(letter.key or b"")).encode()),
    ]


def rows_token(rows: Sequence[Sequence[Any]]) -> str:
    """Deduplication token of a batch of rows, from the letters' origins (and stages)."""
    origins = (f"{r[1]}\0{r[2]}\0{r[3]}\0{r[4]}" for r in rows)
    return batch_token(TABLE, 0, 0, len(rows), origins)


async def store_rows(
    kept: DeadLetterRows,
    insert: Callable[[str, list[list[Any]], Sequence[str], str], Awaitable[None]],
) -> int:
    """Store the rows kept since the last call in streamlearn.dead_letters, idempotently: the
    token comes from the origins, and the table is keyed by them (one row each under FINAL)."""
    rows = kept.take()
    if not rows:
        return 0
    try:
        await insert(TABLE, rows, ROW_COLUMNS, rows_token(rows))
    except BaseException:
        kept.put_back(rows)
        raise
    return len(rows)


def _kafka_reason(exc: KafkaException) -> str:
    err = exc.args[0] if exc.args else exc
    return str(getattr(err, "str", lambda: err)())
