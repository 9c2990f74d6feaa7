"""Dead letters on the real broker: a letter the topic refuses whole is sent bounded, never
stops its writer (S5); a worker stores every dead letter in streamlearn.dead_letters (S10),
logs a storm as a summary (S17), and signs checkpoints with their own key (S15)."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from streamlearn.foundation.dead_letters import FALLBACK_VALUE_BYTES, DeadLetter, DeadLetterWriter
from streamlearn.foundation.kafka import admin
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store.access import worker_store
from streamlearn.learners import checkpoint
from streamlearn.schemas import Serde
from streamlearn.tools.processes import WorkerProcess
from tests.conftest import register_secret
from tests.integration.kafka_helpers import Record, consume_all, produce, wait_until
from tests.integration.test_pipeline import simulated

TXN = Serde("Transaction")
OUTCOME = Serde("Outcome")
DLQ_MAX_BYTES = 4096  # the dead-letter topic's max.message.bytes in these tests


def small_dead_letter_topic(settings: Settings, max_bytes: int) -> str:
    """Create the dead-letters topic first, with a small message limit (ensure_topics keeps it)."""
    topic = settings.topic("dead-letters")
    new = NewTopic(
        topic, num_partitions=1, replication_factor=1, config={"max.message.bytes": str(max_bytes)}
    )
    client = admin(settings)  # kept alive until the broker answered
    client.create_topics([new])[topic].result(30)
    return topic


def letter(offset: int, value: bytes, error: str = "unknown fingerprint") -> DeadLetter:
    return DeadLetter("transactions", 0, offset, "decode", error, b"card-7", value)


@pytest.mark.timeout(120)
def test_a_letter_too_large_for_the_topic_is_sent_bounded(settings: Settings) -> None:
    topic = small_dead_letter_topic(settings, DLQ_MAX_BYTES)
    writer = DeadLetterWriter(settings)
    big = bytes(range(256)) * 80  # 20 KB: over the topic's limit, under the client's
    huge = b"z" * 17_000_000  # over the client's own message.max.bytes: refused before it leaves
    writer.send(letter(1, b"small"))
    writer.send(letter(2, big))
    writer.send(letter(3, huge))
    writer.flush(timeout=30)  # returns: a refused letter never stops the caller
    records = {int(r.headers["source_offset"]): r for r in consume_all(settings, topic)}
    assert sorted(records) == [1, 2, 3]  # each once: no loop
    # Whole; or, when it shared the refused batch of an oversized one, resent uncut.
    assert records[1].value == b"small" and records[1].headers.get("truncated") in (None, b"false")
    for offset, original in ((2, big), (3, huge)):
        r = records[offset]
        assert r.value == original[:FALLBACK_VALUE_BYTES]
        assert r.headers["truncated"] == b"true" and r.key == b"card-7"
        assert r.headers["original_value_size"] == str(len(original)).encode()
        assert r.headers["stage"] == b"decode" and r.headers["source_topic"] == b"transactions"
        assert r.headers["truncated_reason"]  # why it could not go whole
    assert writer.truncated in (2, 3) and writer.undeliverable == 0
    assert [row[3] for row in writer.rows.take()] == [1, 2, 3]


@pytest.mark.timeout(120)
def test_a_letter_not_even_its_bounded_form_fits_is_counted_not_fatal(settings: Settings) -> None:
    topic = small_dead_letter_topic(settings, 600)  # less than the bounded form needs
    writer = DeadLetterWriter(settings)
    writer.send(letter(1, b"x" * 5000))
    writer.send(letter(2, b"ok"))
    started = time.monotonic()
    writer.flush(timeout=30)
    assert time.monotonic() - started < 25  # no retry loop
    assert writer.undeliverable == 1 and writer.truncated in (1, 2)  # 2: ok shared its batch
    assert [int(r.headers["source_offset"]) for r in consume_all(settings, topic)] == [2]
    assert len(writer.rows) == 2  # still in streamlearn.dead_letters: never silently dropped


def bad_transactions(n_each: int) -> list[tuple[bytes, bytes, str]]:
    """(key, value, reason word) of bad transactions of several kinds."""
    base = simulated(4 * n_each, seed=77)
    out = []
    for i, t in enumerate(base[:n_each]):
        out.append((b"k", TXN.encode({**t, "card_id": f"card\n{i}"}), "card_id holds"))
    for t in base[n_each : 2 * n_each]:
        out.append((b"k", TXN.encode({**t, "amount": -1.0 - len(out)}), "amount is negative"))
    for i in range(n_each):
        out.append((b"k", b"\x00junk" + bytes([i]), "decode"))
    for i in range(n_each):  # larger than the dead-letter topic takes: the bounded form
        out.append((b"k", b"\xc3\x01" + bytes([i]) * 20_000, "decode"))
    return out


@pytest.mark.timeout(240)
def test_a_worker_stores_every_dead_letter_once_and_logs_a_summary(
    settings: Settings, tmp_path: Path
) -> None:
    signing_key = register_secret("model-signing-key-4f1d0c")
    s = settings.with_overrides(learner_checkpoint_s=1.0, model_signing_key=signing_key)
    dlq = small_dead_letter_topic(s, DLQ_MAX_BYTES)
    bad = bad_transactions(10)
    valid = simulated(50, seed=78)
    log = tmp_path / "worker.log"
    with WorkerProcess(s, log) as proc:
        produce(s, s.topic("transactions"), [(t["card_id"].encode(), TXN.encode(t)) for t in valid])
        produce(s, s.topic("transactions"), [(k, v) for k, v, _ in bad])
        outcomes = [
            {
                "transaction_id": t["transaction_id"],
                "is_fraud": False,
                "event_time": t["event_time"],
            }
            for t in valid[:10]
        ]
        produce(
            s,
            s.topic("outcomes"),
            [(o["transaction_id"].encode(), OUTCOME.encode(o)) for o in outcomes],
        )
        store = worker_store(s, timeout=60)

        def stored() -> list[tuple]:
            _, rows = store.query_rows(
                "SELECT source_offset, stage, error, value_size FROM streamlearn.dead_letters FINAL"
            )
            return rows if len(rows) >= len(bad) else []

        rows = wait_until(stored, timeout=90, what=f"{len(bad)} rows in dead_letters FINAL")
        status = proc.status()
        assert proc.proc is not None and proc.proc.poll() is None  # never stopped
        wait_until(
            lambda: (s.state_dir / "checkpoints" / f"{s.worker_id}.ckpt").exists(),
            timeout=60,
            what="a learner checkpoint",
        )
    assert len(rows) == len(bad) == sum(status["dead_letters"].values())
    for word in ("card_id holds", "amount is negative"):
        assert sum(word in r[2] for r in rows) == 10, word
    assert sum(r[3] > 20_000 for r in rows) == 10  # the original size, not the truncated one
    letters: list[Record] = consume_all(s, dlq)
    assert len(letters) == len(bad)
    assert sum(r.headers.get("truncated") == b"true" for r in letters) == 10

    # S17: 40 letters of four reasons are a few lines, not one WARNING each.
    text = log.read_text(errors="replace")
    lines = [ln for ln in text.splitlines() if "dead letter" in ln]
    assert 4 <= len(lines) < len(bad), lines

    # S15: checkpoints are signed with their own key, not the model signing key.
    folder = s.state_dir / "checkpoints"
    path = folder / f"{s.worker_id}.ckpt"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "key").stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(checkpoint.CheckpointRejected, match="does not verify"):
        checkpoint.load(path, signing_key.encode())
    checkpoint.load(path, (folder / "key").read_bytes())
