"""The whole pipeline against the real broker: a worker process, Kafka in and out, ClickHouse.

Each test starts `streamlearn worker` (streamlearn.processes.WorkerProcess) on its own topic
prefix and embedded store, produces with confluent-kafka, and checks what came out on the
topics, in ClickHouse (through the worker, which owns chdb) and on /status. No mocks.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import lightgbm as lgb
import numpy as np
import pytest

from streamlearn.batch_retrain.pipeline import run_retrain
from streamlearn.batch_retrain.publish import fetch_release, publish_release
from streamlearn.batch_retrain.training_set import build_training_set
from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.domain.release import build_release
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store.access import RemoteStore, worker_store
from streamlearn.learners.drift import bins_to_record, reference_bins
from streamlearn.schemas import Serde
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import OutcomeDelays, Simulator, generate_batch
from streamlearn.tools.simulate.replay import Replayer
from tests.integration.kafka_helpers import (
    committed_offsets,
    consume_all,
    produce,
    rewind_group,
    shift_to,
    wait_until,
)

TXN = Serde("Transaction")
OUTCOME = Serde("Outcome")
PREDICTION = Serde("Prediction")
DL_HEADERS = ("error", "stage", "source_topic", "source_partition", "source_offset")
DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


# --- fixtures and small helpers ------------------------------------------------------------


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        yield proc
    finally:
        proc.stop(timeout=30)


def group_of(settings: Settings) -> str:
    """The worker's consumer group: the Faust app id."""
    return f"{settings.topic_prefix}streamlearn"


def store_of(settings: Settings) -> RemoteStore:
    return worker_store(settings, timeout=60)


def scalar_row(settings: Settings, sql: str, parameters: dict[str, Any] | None = None) -> tuple:
    _, rows = store_of(settings).query_rows(sql, parameters)
    assert len(rows) == 1, rows
    return rows[0]


def txn_message(txn: dict[str, Any]) -> tuple[bytes, bytes]:
    return txn["card_id"].encode(), TXN.encode(txn)


def produce_transactions(settings: Settings, txns: list[dict[str, Any]]) -> None:
    produce(settings, settings.topic("transactions"), [txn_message(t) for t in txns])


def simulated(n: int, *, seed: int, cards: int = 5000) -> list[dict[str, Any]]:
    """n simulated transactions whose newest event time is a second ago."""
    return shift_to([t for t, _ in generate_batch(n, seed=seed, cards=cards)], now_ms() - 1000)


def predictions(settings: Settings) -> list[dict[str, Any]]:
    records = consume_all(settings, settings.topic("predictions"))
    out = []
    for r in records:
        p = PREDICTION.decode(r.value)
        assert r.key == p["transaction_id"].encode()
        out.append(p)
    return out


def dead_letters_total(status: dict[str, Any]) -> int:
    return sum((status.get("dead_letters") or {}).values())


def wait_status(worker: WorkerProcess, check: Any, *, timeout: float, what: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = worker.status()
        return status if check(status) else None

    return wait_until(probe, timeout=timeout, what=what)


def small_model(seed: int, rounds: int = 5) -> lgb.Booster:
    """A tiny LightGBM model over the worker's feature names, trained on noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, len(FEATURE_NAMES)))
    y = (x[:, 0] + rng.normal(scale=0.5, size=600) > 0.8).astype(int)
    data = lgb.Dataset(x, label=y, feature_name=list(FEATURE_NAMES))
    params = {"objective": "binary", "verbosity": -1, "num_leaves": 7, "seed": seed}
    return lgb.train(params, data, num_boost_round=rounds)


def release_of(booster: lgb.Booster, version: str) -> dict[str, Any]:
    t = now_ms()
    return build_release(
        booster,
        version=version,
        feature_names=FEATURE_NAMES,
        train_start=t - DAY_MS,
        train_end=t,
        metrics={"auc": 0.5},
        signing_key=None,
        reason="integration test",
    )


# --- 1. N in, N out ------------------------------------------------------------------------


def bad_messages(template: dict[str, Any], seed: int) -> list[tuple[str, str, bytes, bytes]]:
    """(kind, expected stage, key, value) for every kind of bad input, twice each."""
    rng = random.Random(seed)
    now = now_ms()
    out: list[tuple[str, str, bytes, bytes]] = []
    for copy in range(2):

        def txn(**changes: Any) -> dict[str, Any]:
            return {**template, "transaction_id": f"bad-{uuid4().hex}", **changes}

        enc = TXN.encode(txn())
        outcome = OUTCOME.encode({"transaction_id": "x" * 24, "is_fraud": True, "event_time": now})
        kinds: list[tuple[str, str, bytes]] = [
            ("random bytes", "decode", b"\x00" + rng.randbytes(63)),
            ("empty", "decode", b""),
            ("truncated", "decode", enc[: len(enc) // 2]),
            ("unknown fingerprint", "decode", b"\xc3\x01" + rng.randbytes(8) + enc[10:]),
            # A Transaction header over an Outcome body: required fields cannot be read.
            ("wrong record", "decode", enc[:10] + outcome[10:]),
            ("negative amount", "validate", TXN.encode(txn(amount=-12.5))),
            ("NaN amount", "validate", TXN.encode(txn(amount=float("nan")))),
            ("5 years old", "validate", TXN.encode(txn(event_time=now - 5 * 365 * DAY_MS))),
            ("2 days ahead", "validate", TXN.encode(txn(event_time=now + 2 * DAY_MS))),
            ("empty card_id", "validate", TXN.encode(txn(card_id=""))),
        ]
        out += [(kind, stage, f"bad-{copy}-{kind}".encode(), v) for kind, stage, v in kinds]
    return out


@pytest.mark.timeout(180)
def test_n_in_n_out_and_bad_input_dead_lettered(settings: Settings, worker: WorkerProcess) -> None:
    n = 2000
    txns = simulated(n, seed=11)
    bad = bad_messages(txns[0], seed=5)

    # Bad messages at random places among the valid ones (which keep their order).
    rng = random.Random(3)
    messages: list[tuple[str | None, tuple[bytes, bytes]]] = [(None, txn_message(t)) for t in txns]
    for kind, _stage, key, value in bad:
        messages.insert(rng.randrange(len(messages) + 1), (kind, (key, value)))
    sent = produce(settings, settings.topic("transactions"), [m for _, m in messages])
    bad_sent = {
        (s.partition, s.offset): (kind, s)
        for (kind, _), s in zip(messages, sent, strict=True)
        if kind is not None
    }
    stage_of = {kind: stage for kind, stage, _, _ in bad}

    status = worker.wait_for("transactions", n, timeout=90)
    status = wait_status(
        worker,
        lambda s: dead_letters_total(s) >= len(bad),
        timeout=30,
        what=f"{len(bad)} dead letters",
    )
    time.sleep(1.0)  # anything extra would show up now
    status = worker.status()
    assert status["transactions"] == n
    assert status["predictions"] == n
    assert status["replayed_transactions"] == 0
    assert status["dead_letters"] == dict(Counter(stage for _, stage, _, _ in bad))

    # Predictions: every valid transaction exactly once, served by the online learner.
    preds = predictions(settings)
    ids = [p["transaction_id"] for p in preds]
    print(f"predictions topic: {len(ids)} messages, {len(set(ids))} distinct transactions")
    assert len(set(ids)) == n
    assert set(ids) == {t["transaction_id"] for t in txns}
    for p in preds:
        assert 0.0 <= p["score"] <= 1.0, p
        assert p["model_version"] == "none", p
        assert p["lightgbm_score"] is None, p

    # ClickHouse, queried through the running worker.
    assert scalar_row(
        settings,
        "SELECT count(), count(DISTINCT transaction_id) FROM streamlearn.transactions FINAL",
    ) == (n, n)
    assert scalar_row(settings, "SELECT count() FROM streamlearn.predictions FINAL") == (n,)
    _, rows = store_of(settings).query_rows(
        "SELECT transaction_id FROM streamlearn.transactions FINAL"
    )
    assert {r[0] for r in rows} == {t["transaction_id"] for t in txns}

    # Dead letters: exactly the bad messages, raw bytes and origin kept.
    letters = consume_all(settings, settings.topic("dead-letters"))
    assert len(letters) == len(bad)
    seen: set[tuple[int, int]] = set()
    for letter in letters:
        for header in DL_HEADERS:
            assert header in letter.headers, (header, letter)
        assert letter.headers["source_topic"].decode() == settings.topic("transactions")
        origin = (
            int(letter.headers["source_partition"]),
            int(letter.headers["source_offset"]),
        )
        assert origin in bad_sent, (origin, letter)
        kind, original = bad_sent[origin]
        assert (letter.value or b"") == original.value, kind
        assert letter.key == original.key, kind
        assert letter.headers["stage"].decode() == stage_of[kind], (kind, letter.headers)
        assert letter.headers["error"], kind
        seen.add(origin)
    assert seen == set(bad_sent)


# --- 2. model hot swap ----------------------------------------------------------------------


def _model_version(worker: WorkerProcess) -> str:
    return worker.status()["model_version"]


@pytest.mark.timeout(180)
def test_hot_swap_and_tampered_release(
    settings: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    txns = simulated(900, seed=12)
    before, after, last = txns[:300], txns[300:600], txns[600:]

    produce_transactions(settings, before)
    worker.wait_for("transactions", len(before), timeout=90)
    assert _model_version(worker) == "none"

    good = release_of(small_model(1), "v-test-good")
    publish_release(settings, good)
    wait_status(
        worker,
        lambda s: s["model_version"] == good["version"],
        timeout=30,
        what="the published model to serve",
    )
    produce_transactions(settings, after)
    worker.wait_for("transactions", len(before) + len(after), timeout=60)

    # A release whose bytes changed after its sha256 was computed is refused.
    tampered = release_of(small_model(2), "v-test-tampered")
    tampered["model"] = tampered["model"] + b"\n"
    publish_release(settings, tampered)
    status = wait_status(
        worker,
        lambda s: (s.get("dead_letters") or {}).get("model", 0) >= 1,
        timeout=30,
        what="the tampered model to be dead-lettered",
    )
    assert status["model_version"] == good["version"]
    assert status["dead_letters"] == {"model": 1}
    assert any(v == tampered["version"] for v, _ in status["models_refused"])

    produce_transactions(settings, last)
    worker.wait_for("transactions", len(txns), timeout=60)

    preds = predictions(settings)
    ids = [p["transaction_id"] for p in preds]
    assert len(ids) == len(set(ids)) == len(txns), "a transaction was scored twice or lost"
    assert set(ids) == {t["transaction_id"] for t in txns}
    by_id = {p["transaction_id"]: p for p in preds}
    for t in before:
        assert by_id[t["transaction_id"]]["model_version"] == "none"
    for t in after + last:
        p = by_id[t["transaction_id"]]
        assert p["model_version"] == good["version"], p
        assert p["lightgbm_score"] is not None and p["score"] == p["lightgbm_score"], p
        assert 0.0 <= p["score"] <= 1.0, p
    assert scalar_row(
        settings,
        "SELECT countIf(model_version = {v:String}), count() FROM streamlearn.transactions FINAL",
        {"v": good["version"]},
    ) == (len(after) + len(last), len(txns))

    letters = [
        r
        for r in consume_all(settings, settings.topic("dead-letters"))
        if r.headers.get("stage") == b"model"
    ]
    assert len(letters) == 1
    assert letters[0].headers["source_topic"].decode() == settings.topic("models")
    assert b"sha256" in letters[0].headers["error"]

    # A restarted worker reads the models topic from the start: the newest release is the
    # tampered one, so it must fall back to the last one that verifies.
    worker.stop(timeout=30)
    again = WorkerProcess(settings, tmp_path / "worker-2.log").start()
    try:
        assert again.status()["model_version"] == good["version"]
    finally:
        again.stop(timeout=30)


# --- 3. outcomes ---------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_outcomes_are_stored_and_learned_once(settings: Settings, worker: WorkerProcess) -> None:
    txns = simulated(200, seed=13)
    produce_transactions(settings, txns)
    worker.wait_for("transactions", len(txns), timeout=90)

    labelled = txns[:50]
    now = now_ms()
    outcomes = [
        {"transaction_id": t["transaction_id"], "is_fraud": i % 7 == 0, "event_time": now}
        for i, t in enumerate(labelled)
    ]
    duplicate = outcomes[3]
    early_id = f"early-{uuid4().hex}"
    early = {"transaction_id": early_id, "is_fraud": True, "event_time": now}
    sent = [*outcomes, duplicate, early]
    produce(
        settings,
        settings.topic("outcomes"),
        [(o["transaction_id"].encode(), OUTCOME.encode(o)) for o in sent],
    )
    worker.wait_for("outcomes", len(sent), timeout=60)
    # Stored first, then learned (the early one after a store lookup that yields nothing).
    status = wait_status(
        worker,
        lambda s: s["learned"] + s["early_outcomes"] + s["duplicate_outcomes"] >= len(sent),
        timeout=30,
        what="every outcome to be learned, parked or counted as a repeat",
    )
    assert status["outcomes"] == len(sent)
    assert status["learned"] == len(outcomes)
    assert status["duplicate_outcomes"] == 1
    assert status["early_outcomes"] == 1
    assert status["conflicting_outcomes"] == 0
    assert dead_letters_total(status) == 0

    _, rows = store_of(settings).query_rows(
        "SELECT transaction_id, is_fraud, toUnixTimestamp64Milli(event_time) "
        "FROM streamlearn.outcomes FINAL"
    )
    # FINAL collapses the exact repeat; the early outcome is kept although nothing matches it.
    assert sorted(rows) == sorted(
        (o["transaction_id"], o["is_fraud"], o["event_time"]) for o in [*outcomes, early]
    )

    # The transaction of the early outcome arrives: the worker learns from it when it scores it.
    late_txn = {**txns[-1], "transaction_id": early_id, "event_time": now_ms() - 500}
    produce_transactions(settings, [late_txn])
    status = worker.wait_for("learned", len(outcomes) + 1, timeout=30)
    assert status["early_outcomes"] == 1


# --- 4. restart ----------------------------------------------------------------------------


def stored_count(settings: Settings) -> tuple[int, int]:
    return scalar_row(
        settings,
        "SELECT count(), count(DISTINCT transaction_id) FROM streamlearn.transactions FINAL",
    )


def card_totals_off(settings: Settings, txns: list[dict[str, Any]]) -> list[tuple]:
    """Rows whose logged card_tx_total is not the number of the card's earlier transactions.

    Exact only if every event changed its card's state once: state restored from the
    changelog after a restart, and no event applied twice.
    """
    _, rows = store_of(settings).query_rows(
        "SELECT transaction_id, card_id, features['card_tx_total'] "
        "FROM streamlearn.transactions FINAL"
    )
    got = {r[0]: (r[1], r[2]) for r in rows}
    seen: Counter[str] = Counter()
    off = []
    for i, t in enumerate(txns):
        card, total = got[t["transaction_id"]]
        assert card == t["card_id"]
        if total != min(seen[card], 10_000):
            off.append((i, card, total, seen[card]))
        seen[card] += 1
    return off


@pytest.mark.timeout(240)
def test_restart_keeps_rows_and_feature_state(settings: Settings, tmp_path: Path) -> None:
    n, m = 600, 400
    # Few cards, so most cards after the restart were seen before it.
    txns = simulated(n + m, seed=14, cards=150)
    first, then = txns[:n], txns[n:]

    one = WorkerProcess(settings, tmp_path / "worker-1.log").start()
    try:
        produce_transactions(settings, first)
        one.wait_for("transactions", n, timeout=90)
        assert one.stop(timeout=30) == 0
    finally:
        one.kill()
    # A graceful stop commits every event whose outputs were durable.
    committed = committed_offsets(settings, group_of(settings), settings.topic("transactions"))
    assert sum(committed.values()) == n, committed

    two = WorkerProcess(settings, tmp_path / "worker-2.log").start()
    try:
        # Produced at once, as live traffic would be, while the worker is still starting.
        produce_transactions(settings, then)
        wait_until(
            lambda: stored_count(settings)[1] == n + m,
            timeout=90,
            what=f"{n + m} distinct transactions in ClickHouse",
        )
        time.sleep(1.0)
        two.status()
        assert stored_count(settings) == (n + m, n + m)

        # The state of cards seen before the restart came back from the changelog: the first
        # post-restart transaction of such a card knows the card's earlier transactions.
        _, rows = store_of(settings).query_rows(
            "SELECT transaction_id, features['card_tx_total'] FROM streamlearn.transactions FINAL"
        )
        total_of = dict(rows)
        before = Counter(t["card_id"] for t in first)
        firsts = {}
        for t in then:
            firsts.setdefault(t["card_id"], t)
        known = [t for card, t in firsts.items() if before[card]]
        assert len(known) > len(firsts) // 2
        for t in known:
            assert total_of[t["transaction_id"]] >= before[t["card_id"]], t

        # A replayed event (the graceful stop may leave its last offsets uncommitted) is
        # recognised and skipped: every logged card_tx_total counts each earlier event once.
        assert card_totals_off(settings, txns) == []
    finally:
        two.stop(timeout=30)


@pytest.mark.timeout(240)
def test_replay_after_a_lost_commit_changes_no_state(settings: Settings, tmp_path: Path) -> None:
    """A crash after the outputs were durable but before the offset commit, made exact.

    The worker stops, its consumer group is rewound to the start (what an early crash leaves
    behind), and a new worker processes every event again before new ones arrive. At-least-once
    with idempotent outputs means: nothing lost, no row twice, and the per-card state (hence
    every logged feature) as if each event had been processed once.
    """
    n, m = 600, 200
    txns = simulated(n + m, seed=16, cards=40)  # ~15 events per card
    first, then = txns[:n], txns[n:]
    one = WorkerProcess(settings, tmp_path / "worker-1.log").start()
    try:
        produce_transactions(settings, first)
        one.wait_for("transactions", n, timeout=90)
        assert card_totals_off(settings, first) == []
        assert one.stop(timeout=30) == 0
    finally:
        one.kill()
    rewind_group(settings, group_of(settings), settings.topic("transactions"))

    two = WorkerProcess(settings, tmp_path / "worker-2.log").start()
    try:
        # The replay: every event is recognised as applied and skipped, not scored again.
        two.wait_for("replayed_transactions", n, timeout=90)
        assert two.status()["transactions"] == 0
        produce_transactions(settings, then)
        wait_until(
            lambda: stored_count(settings)[1] == n + m,
            timeout=60,
            what=f"{n + m} distinct transactions in ClickHouse",
        )
        assert stored_count(settings) == (n + m, n + m)
        ids = {p["transaction_id"] for p in predictions(settings)}
        assert ids == {t["transaction_id"] for t in txns}
        off = card_totals_off(settings, txns)
        assert off == [], f"{len(off)} rows log a wrong card_tx_total, e.g. {off[:5]}"
    finally:
        two.stop(timeout=30)


# --- 5. retrain end to end ---------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_retrain_from_replayed_history_is_served(settings: Settings, worker: WorkerProcess) -> None:
    t0 = time.monotonic()
    now = now_ms()
    sim = Simulator(
        seed=15, cards=1500, merchants=200, fraud_rate=0.02, delays=OutcomeDelays.scaled(600)
    )
    replayer = Replayer(settings)
    counts = replayer.publish(sim.events(now - 2 * DAY_MS, until_ms=now - 60_000))
    replayer.release_until(now)
    print(
        f"replayed {counts.transactions} transactions ({counts.frauds} fraud), "
        f"{counts.outcomes} outcomes in {time.monotonic() - t0:.1f}s"
    )
    assert counts.transactions > 5000 and counts.frauds > 50

    worker.wait_for("transactions", counts.transactions, timeout=90)
    worker.wait_for("outcomes", counts.outcomes, timeout=90)
    # Learning follows storing, a slice at a time: wait for it rather than read mid-way.
    status = worker.wait_for("learned", counts.outcomes, timeout=60)
    assert dead_letters_total(status) == 0
    # Outcomes often arrive before their transaction is scored (parked as early): each is
    # learned from exactly once either way.
    assert status["learned"] == counts.outcomes
    t1 = time.monotonic()

    result = run_retrain(settings, store_of(settings), maturity_s=3600, reason="integration")
    print(
        f"retrain {result.version}: {result.status}, rows {result.rows}, "
        f"{result.timings['total_s']:.1f}s; history processed in {t1 - t0:.1f}s"
    )
    assert result.published and result.status == "champion"
    wait_status(
        worker,
        lambda s: s["model_version"] == result.version,
        timeout=30,
        what=f"the worker to serve {result.version}",
    )
    assert scalar_row(
        settings,
        "SELECT status FROM streamlearn.models FINAL WHERE version = {v:String}",
        {"v": result.version},
    ) == ("champion",)

    # Live traffic after the swap is scored by the retrained model.
    live = [
        e.transaction
        for e in sim.events(now_ms() - 20_000, count=50, rate_per_s=5.0, diurnal=False)
    ]
    produce_transactions(settings, live)
    worker.wait_for("transactions", counts.transactions + len(live), timeout=30)
    served = {p["transaction_id"]: p for p in predictions(settings)}
    for t in live:
        assert served[t["transaction_id"]]["model_version"] == result.version

    # The gate judged a model trained without the holdout; the one served was boosted again,
    # same rounds, on every row (the holdout included): its window ends with the holdout, and
    # its metrics are the judged model's holdout figures, with refit_rows saying so.
    release = fetch_release(settings, "fraud")
    assert release is not None and release["version"] == result.version
    ts = build_training_set(store_of(settings), maturity_s=3600, as_of_ms=result.as_of)
    every = (ts.train, ts.valid, ts.holdout)
    assert release["train_end"] == result.train_end == ts.holdout_end
    assert release["metrics"]["refit_rows"] == sum(s.rows for s in every)
    assert release["metrics"]["holdout_ap"] == pytest.approx(result.metrics["holdout_ap"])
    # The release carries the quantile bins of the rows it trained on, and the worker's data
    # drift monitor took them as its reference when it swapped to it.
    expected = bins_to_record(
        reference_bins(
            np.concatenate([s.X for s in every]),
            ts.feature_names,
            weights=np.concatenate([s.w for s in every]),
        )
    )
    assert release["reference_bins"] == expected
    assert set(expected) == set(release["feature_names"])
    assert worker.status()["drift_reference"] == f"model {result.version}"
