"""A hostile upstream: every kind of bad message, interleaved with valid ones, on every input.

Transactions and outcomes get random bytes, truncated Avro, unknown fingerprints, wrong types
and missing required fields (written with hostile writer schemas pushed straight onto the
schemas topic, bypassing `schemas register`'s check), NaN/inf/negative amounts, event times
far in the past or future, a ~900 KB message, 100 KB strings, and a hypothesis-generated
stream of malformed records. Malformed schemas and model messages are sent too. Each bad
message must be on dead-letters with its raw bytes, stage, error and origin; the worker must
stay up; and every valid transaction must be scored exactly once.

What is "bad" is decided by an oracle: the contract's own decoder and validation rules, run
here on the same bytes (a byte mutation can happen to yield a valid record; then it must be
scored like any valid one).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from streamlearn.foundation.errors import InvalidRecord
from streamlearn.foundation.kafka import ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import SchemaError, Serde
from streamlearn.schemas.serde import default_registry
from streamlearn.streams.validate import check_outcome, check_transaction, outcome_max_age_days
from streamlearn.tools.processes import WorkerProcess
from tests.integration.kafka_helpers import consume_all, produce, wait_until
from tests.integration.test_pipeline import simulated, store_of

DAY_MS = 86_400_000
_DEFAULTS = Settings()
OUTCOME_MAX_AGE_DAYS = outcome_max_age_days(
    _DEFAULTS.max_event_age_days, _DEFAULTS.label_horizon_days
)
DL_HEADERS = ("error", "stage", "source_topic", "source_partition", "source_offset")

# Writer schemas a hostile producer pushes onto the schemas topic without the resolution
# check: one gives amount (outcome: is_fraud) the wrong type, one lacks a required field.
TXN_FIELDS = json.loads(json.dumps(Serde("Transaction").schema["fields"]))
OUTCOME_FIELDS = json.loads(json.dumps(Serde("Outcome").schema["fields"]))


def _variant(base: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": base, "namespace": "io.streamlearn", "fields": fields}


HOSTILE_SCHEMAS = {
    "txn amount string": _variant(
        "Transaction",
        [{**f, "type": "string"} if f["name"] == "amount" else f for f in TXN_FIELDS],
    ),
    "txn no merchant_id": _variant(
        "Transaction", [f for f in TXN_FIELDS if f["name"] != "merchant_id"]
    ),
    "outcome is_fraud string": _variant(
        "Outcome",
        [{**f, "type": "string"} if f["name"] == "is_fraud" else f for f in OUTCOME_FIELDS],
    ),
    "outcome no is_fraud": _variant(
        "Outcome", [f for f in OUTCOME_FIELDS if f["name"] != "is_fraud"]
    ),
}
# Messages on the schemas topic that are not schemas at all: logged and ignored, never fatal.
MALFORMED_SCHEMAS = [b"{not json", b'"just a string"', b'{"type": "record"}', b"[1, 2]", b"null"]


def now_ms() -> int:
    return int(time.time() * 1000)


class Oracle:
    """The contract's decision on some bytes: None (valid), "decode" or "validate"."""

    def __init__(self) -> None:
        registry = default_registry()
        for schema in HOSTILE_SCHEMAS.values():
            registry.add(schema)
        self.txn = Serde("Transaction", registry)
        self.outcome = Serde("Outcome", registry)

    def transaction(self, value: bytes) -> tuple[str | None, dict[str, Any] | None]:
        t = now_ms()
        try:
            record = self.txn.decode(value)
            check_transaction(record, t, 400 * DAY_MS, 3600 * 1000)
        except SchemaError:
            return "decode", None
        except InvalidRecord:
            return "validate", None
        return None, record

    def outcome_of(self, value: bytes) -> tuple[str | None, dict[str, Any] | None]:
        t = now_ms()
        try:
            record = self.outcome.decode(value)
            check_outcome(record, t, int(OUTCOME_MAX_AGE_DAYS * DAY_MS), 3600 * 1000)
        except SchemaError:
            return "decode", None
        except InvalidRecord:
            return "validate", None
        return None, record


ORACLE = Oracle()
TXN = ORACLE.txn
OUTCOME = ORACLE.outcome


def _writer(schema: dict[str, Any]) -> Serde:
    """A Serde that writes with the given (hostile) schema."""
    serde = Serde.__new__(Serde)
    registry = default_registry()
    serde.name, serde.registry, serde.schema = schema["name"], registry, schema
    serde.fingerprint = registry.add(schema)
    serde._parsed = registry.get(serde.fingerprint)
    serde._header = b"\xc3\x01" + serde.fingerprint
    return serde


def bad_transactions(template: dict[str, Any], rng: random.Random) -> list[tuple[str, bytes]]:
    """(kind, value) for every kind of bad transaction."""
    now = now_ms()

    def txn(**changes: Any) -> dict[str, Any]:
        return {**template, "transaction_id": f"bad-{rng.getrandbits(64):016x}", **changes}

    enc = TXN.encode(txn())
    as_string = {**txn(), "amount": "12.50"}
    no_merchant = {k: v for k, v in txn().items() if k != "merchant_id"}
    return [
        ("random bytes", rng.randbytes(64)),
        ("random bytes after the marker", b"\xc3\x01" + rng.randbytes(40)),
        ("empty", b""),
        ("header only", enc[:10]),
        ("truncated", enc[: len(enc) // 2]),
        ("truncated by one", enc[:-1]),
        ("trailing garbage", enc + b"\x00\x01"),
        ("unknown fingerprint", b"\xc3\x01" + rng.randbytes(8) + enc[10:]),
        (
            "wrong type: amount as string",
            _writer(HOSTILE_SCHEMAS["txn amount string"]).encode(as_string),
        ),
        ("missing merchant_id", _writer(HOSTILE_SCHEMAS["txn no merchant_id"]).encode(no_merchant)),
        ("NaN amount", TXN.encode(txn(amount=float("nan")))),
        ("+inf amount", TXN.encode(txn(amount=float("inf")))),
        ("-inf amount", TXN.encode(txn(amount=float("-inf")))),
        ("negative amount", TXN.encode(txn(amount=-0.01))),
        ("absurd amount", TXN.encode(txn(amount=1e300))),
        ("event time 1970", TXN.encode(txn(event_time=0))),
        ("event time negative", TXN.encode(txn(event_time=-(2**62)))),
        ("event time 5 years ago", TXN.encode(txn(event_time=now - 5 * 365 * DAY_MS))),
        ("event time year 2200", TXN.encode(txn(event_time=7_258_118_400_000))),
        ("event time in a day", TXN.encode(txn(event_time=now + DAY_MS))),
        ("oversized ~900 KB", TXN.encode(txn(device_id="d" * 900_000))),
        ("100 KB card_id", TXN.encode(txn(card_id="c" * 100_000))),
        ("100 KB transaction_id", TXN.encode(txn(transaction_id="t" * 100_000))),
        ("empty transaction_id", TXN.encode(txn(transaction_id=""))),
        ("empty merchant_id", TXN.encode(txn(merchant_id=""))),
        ("NUL-only card_id", TXN.encode(txn(card_id="\x00" * 300))),
        ("invalid UTF-8", enc[:12] + b"\xff\xfe" + enc[14:]),
    ]


def bad_outcomes(rng: random.Random, ids: list[str]) -> list[tuple[str, bytes]]:
    now = now_ms()

    def outcome(**changes: Any) -> dict[str, Any]:
        return {"transaction_id": rng.choice(ids), "is_fraud": False, "event_time": now, **changes}

    enc = OUTCOME.encode(outcome())
    return [
        ("random bytes", rng.randbytes(48)),
        ("empty", b""),
        ("truncated", enc[: len(enc) - 3]),
        ("unknown fingerprint", b"\xc3\x01" + rng.randbytes(8) + enc[10:]),
        (
            "wrong type: is_fraud as string",
            _writer(HOSTILE_SCHEMAS["outcome is_fraud string"]).encode(
                {**outcome(), "is_fraud": "yes"}
            ),
        ),
        (
            "missing is_fraud",
            _writer(HOSTILE_SCHEMAS["outcome no is_fraud"]).encode(
                {k: v for k, v in outcome().items() if k != "is_fraud"}
            ),
        ),
        ("event time year 2200", OUTCOME.encode(outcome(event_time=7_258_118_400_000))),
        ("event time negative", OUTCOME.encode(outcome(event_time=-(2**62)))),
        ("empty transaction_id", OUTCOME.encode(outcome(transaction_id=""))),
        ("100 KB transaction_id", OUTCOME.encode(outcome(transaction_id="x" * 100_000))),
        ("oversized ~900 KB", b"\xc3\x01" + OUTCOME.fingerprint + b"\x00" * 900_000),
    ]


# --- hypothesis: a generator of malformed records -------------------------------------------

BAD_AMOUNTS = st.one_of(
    st.just(float("nan")),
    st.sampled_from([float("inf"), float("-inf")]),
    st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False),
    st.floats(min_value=1.01e9, allow_nan=False, allow_infinity=False),
)
BAD_TIMES = st.one_of(
    st.integers(min_value=-(2**63), max_value=1_000_000_000_000),  # before 2001-09
    st.integers(min_value=10_000_000_000_000, max_value=2**63 - 1),  # after 2286
)
BAD_IDS = st.one_of(st.just(""), st.text(min_size=257, max_size=400))


@st.composite
def malformed_transaction(draw: st.DrawFn, template: dict[str, Any]) -> bytes:
    # A fresh id of constant length: the encoding's length (what the draws range over) is
    # the same in every example, and a mutation that stays valid is still one transaction.
    txn = {**template, "transaction_id": f"hyp-{uuid4().hex}"}
    how = draw(st.sampled_from(["amount", "time", "id", "truncate", "flip", "splice", "bytes"]))
    if how == "amount":
        return TXN.encode({**txn, "amount": draw(BAD_AMOUNTS)})
    if how == "time":
        return TXN.encode({**txn, "event_time": draw(BAD_TIMES)})
    if how == "id":
        field = draw(st.sampled_from(["transaction_id", "card_id", "merchant_id"]))
        return TXN.encode({**txn, field: draw(BAD_IDS)})
    enc = TXN.encode(txn)
    if how == "truncate":
        return enc[: draw(st.integers(0, len(enc) - 1))]
    if how == "flip":
        i = draw(st.integers(0, len(enc) - 1))
        return enc[:i] + bytes([enc[i] ^ draw(st.integers(1, 255))]) + enc[i + 1 :]
    if how == "splice":
        i = draw(st.integers(0, len(enc)))
        return enc[:i] + draw(st.binary(min_size=1, max_size=32)) + enc[i:]
    return draw(st.binary(max_size=200))


@st.composite
def malformed_outcome(draw: st.DrawFn, txn_id: str, now: int) -> bytes:
    outcome = {"transaction_id": txn_id, "is_fraud": True, "event_time": now}
    how = draw(st.sampled_from(["time", "id", "truncate", "flip", "bytes"]))
    if how == "time":
        # Outcomes may be old (up to OUTCOME_MAX_AGE_DAYS): only the far future is invalid.
        return OUTCOME.encode({**outcome, "event_time": draw(BAD_TIMES.filter(lambda t: t > 0))})
    if how == "id":
        return OUTCOME.encode({**outcome, "transaction_id": draw(BAD_IDS)})
    enc = OUTCOME.encode(outcome)
    if how == "truncate":
        return enc[: draw(st.integers(0, len(enc) - 1))]
    if how == "flip":
        i = draw(st.integers(0, len(enc) - 1))
        return enc[:i] + bytes([enc[i] ^ draw(st.integers(1, 255))]) + enc[i + 1 :]
    return draw(st.binary(max_size=120))


def generated(template: dict[str, Any], ids: list[str], examples: int) -> list[tuple[str, bytes]]:
    """(topic name, value) pairs from hypothesis: malformed transactions and outcomes."""
    out: list[tuple[str, bytes]] = []
    now = now_ms()

    @hyp_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def collect(data: st.DataObject) -> None:
        if data.draw(st.booleans()):
            out.append(("transactions", data.draw(malformed_transaction(template))))
        else:
            out.append(
                ("outcomes", data.draw(malformed_outcome(data.draw(st.sampled_from(ids)), now)))
            )

    collect()
    return out


# --- the test --------------------------------------------------------------------------------


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        yield proc
    finally:
        proc.stop(timeout=30)


def _interleave(
    rng: random.Random, valid: list[tuple[bytes, bytes]], bad: list[tuple[str, bytes, bytes]]
) -> list[tuple[str | None, bytes, bytes]]:
    """Bad messages at random places among the valid ones, which keep their order."""
    out: list[tuple[str | None, bytes, bytes]] = [(None, k, v) for k, v in valid]
    for kind, key, value in bad:
        out.insert(rng.randrange(len(out) + 1), (kind, key, value))
    return out


def _publish_schemas(settings: Settings) -> None:
    messages = [
        (f"hostile-{k}".encode(), json.dumps(s).encode()) for k, s in HOSTILE_SCHEMAS.items()
    ]
    messages += [(f"malformed-{i}".encode(), v) for i, v in enumerate(MALFORMED_SCHEMAS)]
    produce(settings, settings.topic("schemas"), messages)


@pytest.mark.timeout(240)
def test_hostile_upstream(settings: Settings, worker: WorkerProcess, tmp_path: Path) -> None:
    rng = random.Random(5)
    # Hostile and malformed schemas are on the topic before the worker starts: it must start
    # (a poison message on the compacted schemas topic would otherwise stop every start).
    ensure_topics(settings)
    _publish_schemas(settings)
    worker.start()

    n = 600
    txns = simulated(n, seed=31, cards=300)
    ids = [t["transaction_id"] for t in txns]
    examples = 200
    hyp = generated(txns[0], ids, examples)

    # Transactions: valid, the explicit bad kinds, and the generated ones, interleaved.
    bad_t = [(k, f"bad-{k}".encode(), v) for k, v in bad_transactions(txns[0], rng)]
    bad_t += [("hypothesis", b"hyp", v) for topic, v in hyp if topic == "transactions"]
    msgs_t = _interleave(rng, [(t["card_id"].encode(), TXN.encode(t)) for t in txns], bad_t)
    sent_t = produce(settings, settings.topic("transactions"), [(k, v) for _, k, v in msgs_t])

    # Outcomes for the first 200 valid transactions, with bad ones among them.
    valid_o = [
        {"transaction_id": i, "is_fraud": j % 9 == 0, "event_time": now_ms()}
        for j, i in enumerate(ids[:200])
    ]
    bad_o = [(k, f"bad-{k}".encode(), v) for k, v in bad_outcomes(rng, ids)]
    bad_o += [("hypothesis", b"hyp", v) for topic, v in hyp if topic == "outcomes"]
    msgs_o = _interleave(
        rng, [(o["transaction_id"].encode(), OUTCOME.encode(o)) for o in valid_o], bad_o
    )

    # Model messages that are not releases.
    models = [(b"champion", b"\x00garbage"), (b"champion", b"")]

    # The oracle's verdict on every message; valid-by-accident mutations count as valid.
    expected_txn_ids = set(ids)
    expected_letters: dict[tuple[str, int, int], tuple[str, str, bytes, bytes]] = {}
    for (kind, key, value), s in zip(msgs_t, sent_t, strict=True):
        if kind is None:
            continue
        stage, record = ORACLE.transaction(value)
        if stage is None:
            assert record is not None
            expected_txn_ids.add(record["transaction_id"])
        else:
            expected_letters[(settings.topic("transactions"), s.partition, s.offset)] = (
                kind,
                stage,
                key,
                value,
            )
    assert len(expected_letters) >= len(bad_t) - 20, "the generator made mostly valid records"

    worker.wait_for("transactions", len(expected_txn_ids), timeout=90)
    sent_o = produce(settings, settings.topic("outcomes"), [(k, v) for _, k, v in msgs_o])
    expected_outcomes = len(valid_o)
    for (kind, key, value), s in zip(msgs_o, sent_o, strict=True):
        if kind is None:
            continue
        stage, _record = ORACLE.outcome_of(value)
        if stage is None:
            expected_outcomes += 1
        else:
            expected_letters[(settings.topic("outcomes"), s.partition, s.offset)] = (
                kind,
                stage,
                key,
                value,
            )
    sent_m = produce(settings, settings.topic("models"), models)
    for (key, value), s in zip(models, sent_m, strict=True):
        expected_letters[(settings.topic("models"), s.partition, s.offset)] = (
            "model garbage",
            "decode",
            key,
            value,
        )

    def letters() -> list[Any]:
        got = consume_all(settings, settings.topic("dead-letters"), timeout=60)
        return got if len(got) >= len(expected_letters) else []

    found = wait_until(letters, timeout=90, what=f"{len(expected_letters)} dead letters")
    status = worker.wait_for("outcomes", expected_outcomes, timeout=60)
    time.sleep(1.0)
    status = worker.status()
    assert worker.proc is not None and worker.proc.poll() is None, "the worker stopped"
    print(
        f"hostile input: {len(bad_t)} bad transactions ({examples} generated in all), "
        f"{len(bad_o)} bad outcomes, {len(models)} bad model messages; "
        f"{len(expected_letters)} dead letters expected, {len(found)} found; "
        f"dead letters by stage {status['dead_letters']}"
    )

    # Every bad message is a dead letter with its raw bytes, stage, error and origin.
    assert len(found) == len(expected_letters)
    for letter in found:
        for header in DL_HEADERS:
            assert header in letter.headers, (header, letter.headers)
        origin = (
            letter.headers["source_topic"].decode(),
            int(letter.headers["source_partition"]),
            int(letter.headers["source_offset"]),
        )
        assert origin in expected_letters, origin
        kind, stage, key, value = expected_letters.pop(origin)
        assert (letter.value or b"") == value, kind
        assert letter.key == key, kind
        assert letter.headers["stage"].decode() == stage, (kind, letter.headers)
        assert letter.headers["error"], kind
    assert not expected_letters

    # Every valid transaction scored exactly once; valid outcomes all stored.
    assert status["transactions"] == status["predictions"] == len(expected_txn_ids)
    _, rows = store_of(settings).query_rows(
        "SELECT count(), uniqExact(transaction_id) FROM streamlearn.transactions FINAL"
    )
    assert rows[0] == (len(expected_txn_ids), len(expected_txn_ids))
    _, rows = store_of(settings).query_rows("SELECT transaction_id FROM streamlearn.transactions")
    assert {r[0] for r in rows} == expected_txn_ids
    predicted = [
        r.key.decode() for r in consume_all(settings, settings.topic("predictions"), timeout=60)
    ]
    assert sorted(predicted) == sorted(expected_txn_ids)
    assert status["outcomes"] == expected_outcomes


def test_oracle_agrees_with_the_encoder() -> None:
    """The test's own judge accepts a valid record and refuses a truncated one."""
    t = simulated(1, seed=1)[0]
    assert ORACLE.transaction(TXN.encode(t)) == (None, t)
    assert ORACLE.transaction(TXN.encode(t)[:-1])[0] == "decode"
