"""Fault injection against the real local broker: kills, graceful stops, broker restarts, takeover.

Each scenario sends simulated transactions at a steady rate while it injects its faults, lets
the pipeline catch up, then checks ClickHouse (the FINAL view analysts query, opened directly
once the worker has stopped) and the predictions topic: every sent transaction has exactly one
row and at least one prediction. Each prints a row (scenario, events, faults, lost, duplicated)
and the session prints them all as a table (tests/chaos/conftest.py).

`make chaos` runs the suite alone; CHAOS_PROFILE=full scales events and faults up.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.foundation.kafka import admin
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store.access import worker_store
from streamlearn.learners import checkpoint
from streamlearn.learners.learner_set import LearnerSet
from streamlearn.schemas import Serde
from streamlearn.streams.learning import restore
from streamlearn.tools import broker
from streamlearn.tools.processes import WorkerProcess
from tests.chaos.harness import (
    TXN,
    PacedProducer,
    StoreFigures,
    free_port_pair,
    predicted,
    remote_distinct,
    remote_ids,
    scaled,
    store_figures,
    transactions,
    wait_stored,
    worker,
)
from tests.chaos.report import ChaosRow, record
from tests.conftest import free_port
from tests.integration.kafka_helpers import consume_all, produce, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

CATCH_UP_S = scaled(90, 240)
OUTCOME = Serde("Outcome")


def verdict(
    scenario: str,
    sent: list[dict],
    faults: int,
    stores: list[StoreFigures],
    predictions: Counter[str],
    started: float,
    placed: dict[str, tuple[int, int]] | None = None,
    stalled: int = 0,
) -> ChaosRow:
    """Record the scenario's row, then assert zero lost, zero duplicated, zero stalled, every
    id predicted."""
    ids = {t["transaction_id"] for t in sent}
    union = frozenset().union(*(s.ids for s in stores))
    row = record(
        ChaosRow(
            scenario,
            events=len(ids),
            faults=faults,
            lost=len(ids - union),
            duplicated=sum(s.duplicated for s in stores),
            reprocessed=sum(len(s.ids) for s in stores) - len(union),
            extra_predictions=sum(predictions.values()) - len(predictions),
            seconds=time.monotonic() - started,
            stalled=stalled,
        )
    )
    if row.lost and placed is not None:
        where = sorted(placed[i] for i in ids - union)
        print(f"lost at (partition, offset): {where[:40]}{' ...' if len(where) > 40 else ''}")
        print(f"of which with a prediction: {len((ids - union) & set(predictions))}")
    assert union <= ids, f"{len(union - ids)} rows of transactions nobody sent"
    assert row.lost == 0, f"{row.lost} transactions lost, e.g. {sorted(ids - union)[:3]}"
    assert row.duplicated == 0, [(s.rows, s.distinct) for s in stores]
    assert row.stalled == 0, f"the worker stalled {row.stalled} time(s)"
    unpredicted = ids - set(predictions)
    assert not unpredicted, f"{len(unpredicted)} transactions without a prediction"
    return row


def finish(proc: WorkerProcess, producer: PacedProducer, n: int) -> StoreFigures:
    """Let the producer finish and the worker catch up, stop it gracefully, read its store."""
    producer.finish()
    got = wait_stored(proc, n, timeout=CATCH_UP_S)
    code = proc.stop(timeout=60)
    assert code == 0, f"the worker stopped with {code} ({got} of {n} stored); see {proc.log_path}"
    return store_figures(proc.settings.store_url)


@pytest.mark.timeout(scaled(180, 900))
def test_sigkill_at_random_points(settings: Settings, tmp_path: Path) -> None:
    """SIGKILL at random moments while the producer sends; restarted at once each time."""
    seed = int(os.environ.get("CHAOS_SEED", "101"))
    rng = random.Random(seed)
    n, kills = scaled(3000, 30_000), scaled(3, 8)
    txns = transactions(n, seed=seed)
    started = time.monotonic()
    log = tmp_path / "worker.log"
    proc = worker(settings, log).start()
    producer = PacedProducer(settings, txns, rate_per_s=n / (kills * 4.0 + 2.0))
    producer.start()
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.5, 3.5))  # anywhere: mid-batch, mid-insert, mid-rebalance
            proc.kill()
            proc = worker(settings, log).start()
        figures = finish(proc, producer, n)
    finally:
        proc.kill()
    verdict(
        f"SIGKILL x{kills} + restart",
        txns,
        kills,
        [figures],
        predicted(settings),
        started,
        producer.placed,
    )


@pytest.mark.timeout(scaled(150, 600))
def test_sigterm_mid_stream_then_restart(settings: Settings, tmp_path: Path) -> None:
    """A graceful stop (SIGTERM) under load finishes in time with status 0; a restart resumes."""
    n, stops = scaled(2000, 20_000), scaled(1, 4)
    txns = transactions(n, seed=202)
    started = time.monotonic()
    log = tmp_path / "worker.log"
    proc = worker(settings, log).start()
    producer = PacedProducer(settings, txns, rate_per_s=n / (stops * 5.0 + 3.0))
    producer.start()
    try:
        for k in range(stops):
            producer.wait_progress((k + 0.5) / (stops + 0.5))
            t_stop = time.monotonic()
            code = proc.stop(timeout=60)
            took = time.monotonic() - t_stop
            print(f"graceful stop {k + 1}: exit {code} in {took:.1f}s")
            assert code == 0, f"SIGTERM ended the worker with {code}; see {log}"
            assert "graceful stop: in-flight batches written and offsets committed" in (
                log.read_text(errors="replace")
            ), f"the stop did not drain the writer; see {log}"
            proc = worker(settings, log).start()
        figures = finish(proc, producer, n)
    finally:
        proc.kill()
    row = verdict(
        f"SIGTERM x{stops} + restart",
        txns,
        stops,
        [figures],
        predicted(settings),
        started,
        producer.placed,
    )
    # A graceful stop drained and committed everything it had read: the restarted worker
    # read nothing twice, so no transaction got a second prediction.
    assert row.extra_predictions == 0, f"{row.extra_predictions} events processed again"


@pytest.mark.timeout(scaled(200, 900))
def test_store_unavailable_pauses_then_resumes(settings: Settings, tmp_path: Path) -> None:
    """ClickHouse refuses every insert for a while (fault injection: a store test double
    fails while a file exists): the worker reports the outage, holds its
    batches un-acked, stops consuming once its bounded backlog is full, and catches up
    with nothing lost or doubled once the store is back."""
    n, outages = scaled(3000, 20_000), scaled(1, 3)
    batch, pending = 50, 300
    down = tmp_path / "store-down"
    s = settings.with_overrides(store_max_pending_rows=pending, batch_size=batch)
    # Scored but not stored at most: the writer's backlog, plus one batch per blocked actor.
    bound = pending + (s.partitions + 1) * batch
    txns = transactions(n, seed=505)
    started = time.monotonic()
    log = tmp_path / "worker.log"
    proc = worker(s, log, store_down=down).start()
    producer = PacedProducer(s, txns, rate_per_s=n / (outages * 14.0 + 6.0))
    producer.start()
    try:
        for k in range(outages):
            producer.wait_progress((k + 0.2) / (outages + 0.2))
            down.touch()
            wait_until(
                lambda: proc.status()["store_unavailable_since"] is not None,
                timeout=30,
                what="the outage reported in /status/",
            )
            stored, sent = remote_distinct(s), producer.sent
            # Paused: scoring waits once the backlog is full, while the producer goes on.
            wait_until(
                lambda: proc.status()["scoring_blocked"] > 0, timeout=30, what="scoring blocked"
            )
            producer.wait_progress(min(1.0, (sent + 2 * bound) / n))
            st = proc.status()
            print(
                f"outage {k + 1}: {st['store_retries']} retries in "
                f"{st['store_unavailable_s']:.1f}s, {st['predictions']} predicted, "
                f"{st['store_pending_rows']} rows pending, {producer.sent} sent"
            )
            assert st["store_retries"] > 0 and "Connection refused" in st["store_last_error"]
            assert remote_distinct(s) == stored, "rows were written while the store was down"
            assert st["predictions"] - stored <= bound, "consumption did not stop"
            assert producer.sent - st["predictions"] > bound, "no lag built up"
            down.unlink()
            wait_until(
                lambda: proc.status()["store_unavailable_since"] is None,
                timeout=60,
                what="writing resumed",
            )
        figures = finish(proc, producer, n)
    finally:
        down.unlink(missing_ok=True)
        proc.kill()
    text = log.read_text(errors="replace")
    assert "store unavailable: holding the batch un-acked" in text
    assert "writing resumed" in text
    verdict(
        f"store down x{outages}", txns, outages, [figures], predicted(s), started, producer.placed
    )


@pytest.mark.timeout(scaled(240, 900))
def test_broker_restart_under_load(settings: Settings, tmp_path: Path) -> None:
    """The broker stopped (SIGTERM; SIGKILL too in the full profile) and restarted under load.

    Runs on a broker of its own (own port and state dir): the session broker is shared.
    """
    own = settings.with_overrides(
        kafka_bootstrap=f"127.0.0.1:{free_port_pair()}", state_dir=tmp_path / "own"
    )
    outages = scaled(1, 3)
    n = scaled(2500, 20_000)
    txns = transactions(n, seed=303)
    broker.up(own)
    started = time.monotonic()
    log = tmp_path / "worker.log"
    proc = worker(own, log).start()
    producer = PacedProducer(own, txns, rate_per_s=n / (outages * 12.0 + 4.0))
    producer.start()
    try:
        for k in range(outages):
            producer.wait_progress((k + 0.3) / (outages + 0.3))
            if k % 2 == 1:  # full profile: a crash of the broker, not only a clean stop
                pid = broker.pid(own)
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: not broker.is_running(own), timeout=20, what="broker gone")
            else:
                broker.down(own)
            time.sleep(random.Random(k).uniform(2.0, 5.0))
            broker.up(own)
            print(f"broker outage {k + 1} over at {producer.progress:.0%} sent")
        figures = finish(proc, producer, n)
        preds = predicted(own)
    finally:
        proc.kill()
        broker.down(own)
    verdict(f"broker restart x{outages}", txns, outages, [figures], preds, started, producer.placed)


@pytest.mark.timeout(scaled(200, 900))
def test_two_workers_one_killed(settings: Settings, tmp_path: Path) -> None:
    """Two workers in one consumer group; one is SIGKILLed mid-stream, the other takes over.

    Limitation of this machine: there is no ClickHouse server, and chdb admits one process per
    store, so the two workers cannot share a store as they would in production. Each gets its
    own chdb store, and the checks run on the union of the two: no transaction is missing from
    both, and neither store's FINAL view holds a transaction twice. The events the killed worker
    had processed but not yet committed are processed again by the survivor, so they appear in
    both stores: reported as "reprocessed" (with one shared server store, the
    ReplacingMergeTree would collapse them and FINAL would show each once).
    """
    rng = random.Random(404)
    n, kills = scaled(3000, 20_000), scaled(1, 3)
    txns = transactions(n, seed=404)
    group = settings.with_overrides(partitions=4)

    def member(i: int) -> Settings:
        return group.with_overrides(
            worker_id=f"chaos-{i}",
            state_dir=tmp_path / f"w{i}",
            clickhouse_url=f"chdb://{tmp_path}/w{i}/ch",
            web_port=free_port(),
        )

    members = [member(1), member(2)]
    started = time.monotonic()
    procs = [worker(s, tmp_path / f"worker-{i + 1}.log").start() for i, s in enumerate(members)]
    # Slow enough that traffic still flows when a restarted member rejoins (kills > 1).
    producer = PacedProducer(
        group, txns, rate_per_s=n / (kills * (8.0 if kills == 1 else 20.0) + 4.0)
    )
    producer.start()
    try:
        for k in range(kills):
            victim = k % 2 + 1 if kills > 1 else 2
            # Both hold partitions (each has scored some) before one dies, while there is
            # traffic left to score.
            if producer.progress < 0.95:
                for p in procs:
                    p.wait_for("transactions", 1, timeout=60)
            time.sleep(rng.uniform(1.0, 4.0))
            procs[victim - 1].kill()
            print(f"killed worker {victim} at {producer.progress:.0%} sent")
            if k < kills - 1:
                procs[victim - 1] = worker(members[victim - 1], procs[victim - 1].log_path)
                time.sleep(8)  # the survivor alone for a while
                procs[victim - 1].start()
        producer.finish()
        survivor = next(p for p in procs if p.proc is not None and p.proc.poll() is None)
        dead = [p for p in procs if p is not survivor]
        dead_ids = frozenset().union(*(store_figures(p.settings.store_url).ids for p in dead))
        # The survivor must come to hold everything the dead worker's store does not.
        wait_until(
            lambda: len(dead_ids | remote_ids(survivor.settings)) >= n,
            timeout=CATCH_UP_S,
            what=f"{n} transactions across the two stores",
        )
        assert survivor.stop(timeout=60) == 0
        stores = [store_figures(s.store_url) for s in members]
    finally:
        for p in procs:
            p.kill()
    for i, s in enumerate(stores):
        print(f"worker {i + 1} store: {s.rows} rows FINAL, {s.distinct} distinct")
    verdict(
        f"2 workers, kill x{kills}", txns, kills, stores, predicted(group), started, producer.placed
    )


@pytest.mark.timeout(scaled(180, 600))
def test_poison_that_cannot_be_dead_lettered(settings: Settings, tmp_path: Path) -> None:
    """Poison messages the dead-letters topic refuses whole (its max.message.bytes is set to
    4 KB here; a poison is 30-60 KB): each is dead-lettered once in its bounded form
    (truncated, with reason, origin and original size), the worker never stops, and every
    valid transaction around them is scored once."""
    n, poisons = scaled(2000, 20_000), scaled(3, 12)
    dlq = settings.topic("dead-letters")
    client = admin(settings)  # created first: ensure_topics keeps its small limit
    new = NewTopic(
        dlq, num_partitions=1, replication_factor=1, config={"max.message.bytes": "4096"}
    )
    client.create_topics([new])[dlq].result(30)
    txns = transactions(n, seed=606)
    started = time.monotonic()
    proc = worker(settings, tmp_path / "worker.log").start()
    producer = PacedProducer(settings, txns, rate_per_s=n / 12.0)
    producer.start()
    stalled = 0
    try:
        for k in range(poisons):
            producer.wait_progress((k + 1) / (poisons + 1))
            produce(settings, settings.topic("transactions"), [poison(k, txns[k])])
        producer.finish()
        got = wait_stored(proc, n, timeout=CATCH_UP_S)
        stalled += got < n
        stalled += proc.proc is not None and proc.proc.poll() is not None
        store = worker_store(settings, timeout=30)
        wait_until(
            lambda: (
                store.query_rows("SELECT count() FROM streamlearn.dead_letters FINAL")[1]
                == [(poisons,)]
            ),
            timeout=30,
            what=f"{poisons} rows in dead_letters",
        )
        assert proc.stop(timeout=60) == 0, f"see {proc.log_path}"
        figures = store_figures(settings.store_url)
    finally:
        proc.kill()
    letters = consume_all(settings, dlq)
    origins = {(r.headers["source_partition"], r.headers["source_offset"]) for r in letters}
    print(f"dead letters: {len(letters)} records for {poisons} poisons, {len(origins)} origins")
    assert len(letters) == len(origins) == poisons  # each once: no loop, none lost
    assert all(
        r.headers.get("truncated") == b"true" and len(r.value or b"") <= 1024 for r in letters
    )
    assert all(int(r.headers["original_value_size"]) > 30_000 for r in letters)
    verdict(
        f"poison x{poisons} (DLQ refuses it whole)",
        txns,
        poisons,
        [figures],
        predicted(settings),
        started,
        producer.placed,
        stalled=stalled,
    )


def poison(k: int, like: dict) -> tuple[bytes, bytes]:
    """A message too large for the dead-letter topic: undecodable junk, or a transaction whose
    device_id breaks the contract's length limit."""
    if k % 2 == 0:
        return f"poison-{k}".encode(), b"\xc3\x01" + bytes(8) + random.Random(k).randbytes(60_000)
    record = {**like, "transaction_id": f"poison-{k}", "device_id": "d" * 30_000}
    return f"poison-{k}".encode(), TXN.encode(record)


QUERIES = (
    "SELECT card_id, count(), sum(amount), avg(score) FROM streamlearn.transactions "
    "GROUP BY card_id ORDER BY 2 DESC LIMIT 20",
    "SELECT model_version, quantiles(0.5, 0.99)(score) FROM streamlearn.transactions "
    "GROUP BY model_version",
    "SELECT count() FROM streamlearn.transactions FINAL",
    "SELECT 1",
)


@pytest.mark.timeout(scaled(180, 600))
def test_query_storm_against_a_writing_worker(settings: Settings, tmp_path: Path) -> None:
    """Analysts' read-only queries hammer the worker's store while it scores and writes: the
    reads run on their own read-only session, so not one insert fails or waits (the session
    the worker writes on must never be left read-only), and nothing is lost or doubled."""
    n, queriers = scaled(3000, 20_000), 3
    txns = transactions(n, seed=707)
    started = time.monotonic()
    proc = worker(settings, tmp_path / "worker.log").start()
    producer = PacedProducer(settings, txns, rate_per_s=n / 15.0)
    stop = threading.Event()
    served = Counter[str]()

    def storm(k: int) -> None:
        store = worker_store(settings, readonly=True, timeout=60)
        while not stop.is_set():
            sql = QUERIES[(served[str(k)] + k) % len(QUERIES)]
            store.query_rows(sql)
            served[str(k)] += 1

    threads = [threading.Thread(target=storm, args=(k,), daemon=True) for k in range(queriers)]
    producer.start()
    for t in threads:
        t.start()
    try:
        producer.finish()
        got = wait_stored(proc, n, timeout=CATCH_UP_S)
        stop.set()
        for t in threads:
            t.join(60)
        status = proc.status()
        assert proc.stop(timeout=60) == 0, f"see {proc.log_path}"
        figures = store_figures(settings.store_url)
    finally:
        stop.set()
        proc.kill()
    queries = sum(served.values())
    print(f"{queries} analyst queries during the run; store failures {status['store_failures']}")
    assert queries >= 3 * queriers and status["store_failures"] == 0
    verdict(
        f"query storm ({queries} queries)",
        txns,
        queries,
        [figures],
        predicted(settings),
        started,
        producer.placed,
        stalled=int(got < n),
    )


@pytest.mark.timeout(scaled(240, 900))
@pytest.mark.parametrize("stay", ["works", "brief"])
def test_rebalance_while_outcomes_flow(settings: Settings, tmp_path: Path, stay: str) -> None:
    """A second worker joins, then leaves gracefully, while transactions and their outcomes
    flow: each handover drains (rows, changelog, a learner checkpoint, commit) before the
    partitions move, so every outcome is dealt with exactly once across the two workers (no
    duplicate, none lost) — read from each worker's last learner checkpoint. `brief`: it
    leaves as soon as it holds partitions (in CI a member that left a second or two after
    joining made the first re-read outcomes it had learned: partitions were handed out before
    Faust sought them to the committed offset)."""
    n = scaled(2000, 16_000)
    group = settings.with_overrides(partitions=4, early_outcome_wait_s=3.0, learner_checkpoint_s=3)
    members = [
        group.with_overrides(
            worker_id=f"rebal-{i}",
            state_dir=tmp_path / f"w{i}",
            clickhouse_url=f"chdb://{tmp_path}/w{i}/ch",
            web_port=free_port(),
        )
        for i in (1, 2)
    ]
    txns = transactions(n, seed=808)
    started = time.monotonic()
    first = worker(members[0], tmp_path / "worker-1.log").start()
    producer = PacedProducer(group, txns, rate_per_s=n / 20.0)
    outcomes = OutcomeSender(group, txns, lag=200, rate_per_s=n / 20.0)
    producer.start()
    outcomes.start()
    second = worker(members[1], tmp_path / "worker-2.log")
    try:
        producer.wait_progress(0.3)
        entries_before = first.status()["state_entries"]
        second.start()  # joins: a rebalance while both streams flow
        if stay == "works":
            wait_until(
                lambda: second.status()["outcomes"] > 0,
                timeout=CATCH_UP_S,
                what="the second worker dealing with outcomes of its partitions",
            )
            producer.wait_progress(0.7)
        else:
            wait_until(
                lambda: second.status()["fetched_batches"] > 0,
                timeout=CATCH_UP_S,
                interval=0.2,
                what="the second worker handed its first batch",
            )
        # The partitions that went to the second worker take their card and merchant state
        # out of the first one's memory (their changelog keeps it).
        wait_until(
            lambda: first.status()["foreign_state_dropped"] > 0,
            timeout=CATCH_UP_S,
            what="the first worker dropping the state of partitions it gave up",
        )
        assert second.stop(timeout=60) == 0  # leaves gracefully: another rebalance
        producer.finish()
        outcomes.finish()

        def progress() -> bool:
            s = first.status()
            seen = (dealt_with(s), checkpointed(members[1]), s["parked_outcomes"], s["outcomes"])
            return dealt_with(s) + seen[1][0] >= n

        wait_until(progress, timeout=CATCH_UP_S, interval=5, what=f"{n} outcomes dealt with")
        # The partitions came back with their state, read again from the changelog.
        entries_after = first.status()["state_entries"]
        assert entries_after >= entries_before > 0, (entries_before, entries_after)
        assert first.stop(timeout=60) == 0
        stores = [store_figures(s.store_url) for s in members]
    finally:
        first.kill()
        second.kill()
    handled = [checkpointed(s) for s in members]
    print(f"outcomes dealt with per worker (dealt, duplicates): {handled}")
    assert sum(h[0] for h in handled) == n, handled
    assert sum(h[1] for h in handled) == 0, handled
    verdict(
        f"rebalance x2 with outcomes ({stay})",
        txns,
        2,
        stores,
        predicted(group),
        started,
        producer.placed,
    )


def dealt_with(status: dict) -> int:
    keys = ("learned", "expired_outcomes", "unknown_outcomes")
    return sum(int(status.get(k) or 0) for k in keys)


def checkpointed(member: Settings) -> tuple[int, int]:
    """(outcomes dealt with, duplicates) as the worker's last learner checkpoint holds them."""
    learners = LearnerSet(member.learners, FEATURE_NAMES)
    path = checkpoint.checkpoint_path(member.state_dir, member.worker_id)
    key = checkpoint.checkpoint_key(member.state_dir, None)
    restored = restore(path, key, learners)
    if restored is None:
        return 0, 0
    state, _ = restored
    loop = state.get("loop_counters", {})
    unlearned = int(loop.get("expired_outcomes", 0)) + int(loop.get("unknown_outcomes", 0))
    counters = learners.counters
    return counters["learned"] + unlearned, counters["duplicate"] + counters["conflicting"]


class OutcomeSender(threading.Thread):
    """An outcome for every transaction, `lag` transactions behind them, at a steady rate."""

    def __init__(self, settings: Settings, txns: list[dict], *, lag: int, rate_per_s: float):
        super().__init__(daemon=True, name="chaos-outcomes")
        self.settings, self.txns, self.lag, self.rate = settings, txns, lag, rate_per_s
        self.sent = 0

    def run(self) -> None:
        time.sleep(self.lag / self.rate)
        topic = self.settings.topic("outcomes")
        start = time.monotonic()
        for i in range(0, len(self.txns), 50):
            ahead = start + i / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            chunk = self.txns[i : i + 50]
            at = int(time.time() * 1000)
            produce(
                self.settings,
                topic,
                [
                    (
                        t["transaction_id"].encode(),
                        OUTCOME.encode(
                            {
                                "transaction_id": t["transaction_id"],
                                "is_fraud": j % 11 == 0,
                                "event_time": at,
                            }
                        ),
                    )
                    for j, t in enumerate(chunk, start=i)
                ],
            )
            self.sent += len(chunk)

    def finish(self, timeout: float = 320) -> None:
        self.join(timeout)
        assert self.sent == len(self.txns), f"{self.sent} of {len(self.txns)} outcomes sent"
