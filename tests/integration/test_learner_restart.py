"""A worker killed (SIGKILL) while learning resumes from its learners' checkpoint and learns
every outcome exactly once: none twice, none skipped (issue 3, "done when").

Evidence, all from the worker itself: the learned counter travels in the same signed pickle as
the models (so it counts learn calls made on the restored lineage), the lr learner's own count
of learn_one calls, the committed outcome offsets never passing what the checkpoint on disk
covers, and the outcomes the learners refused (expired, unknown) in ClickHouse.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store.access import worker_store
from streamlearn.schemas import Serde
from streamlearn.tools.processes import WorkerProcess
from tests.chaos.harness import FAST_GROUP_ENV
from tests.integration.kafka_helpers import committed_offsets, produce, wait_until
from tests.integration.test_pipeline import produce_transactions, simulated

OUTCOME = Serde("Outcome")
DAY_MS = 86_400_000
N = 600  # transactions with one outcome each
REPEATS = 30  # outcomes sent a second time, later in the stream


def now_ms() -> int:
    return int(time.time() * 1000)


def status_learning(status: dict[str, Any]) -> int:
    """Outcomes the learners have dealt with, one way or another."""
    keys = ("learned", "duplicate_outcomes", "expired_outcomes", "unknown_outcomes")
    return sum(status[k] for k in keys)


def send_paced(
    settings: Settings, outcomes: list[dict[str, Any]], per_s: float
) -> threading.Thread:
    """Produce the outcomes in small chunks at about per_s a second (in a thread)."""
    topic = settings.topic("outcomes")

    def run() -> None:
        chunk = 10
        for i in range(0, len(outcomes), chunk):
            part = outcomes[i : i + chunk]
            produce(
                settings, topic, [(o["transaction_id"].encode(), OUTCOME.encode(o)) for o in part]
            )
            time.sleep(chunk / per_s)

    thread = threading.Thread(target=run, daemon=True, name="outcomes")
    thread.start()
    return thread


@pytest.mark.timeout(150)
def test_sigkill_mid_stream_learns_every_outcome_exactly_once(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.with_overrides(learner_checkpoint_s=2.0, early_outcome_wait_s=2.0)
    group = f"{settings.topic_prefix}streamlearn"
    txns = simulated(N, seed=29, cards=300)
    old = {**txns[0], "transaction_id": f"old-{uuid4().hex}", "event_time": now_ms() - 100 * DAY_MS}
    one = WorkerProcess(settings, tmp_path / "worker-1.log", extra_env=FAST_GROUP_ENV).start()
    try:
        produce_transactions(settings, [*txns, old])
        one.wait_for("transactions", N + 1, timeout=60)

        at = now_ms()
        labelled = [
            {"transaction_id": t["transaction_id"], "is_fraud": i % 9 == 0, "event_time": at}
            for i, t in enumerate(txns)
        ]
        expired = {"transaction_id": old["transaction_id"], "is_fraud": True, "event_time": at}
        unknown = {"transaction_id": f"nowhere-{uuid4().hex}", "is_fraud": False, "event_time": at}
        stream = [expired, unknown, *labelled[: N // 2]]
        stream += [
            x for pair in zip(labelled[N // 2 :], labelled[:REPEATS], strict=False) for x in pair
        ]
        stream += labelled[N // 2 + REPEATS :]
        assert len(stream) == N + 2 + REPEATS
        sender = send_paced(settings, stream, per_s=50)

        # Kill once a checkpoint was written and at least 20 outcomes were learned after it
        # (those live only in memory: the case that used to be lost).
        def learned_past_checkpoint() -> dict[str, Any] | None:
            committed = committed_offsets(settings, group, settings.topic("outcomes"))
            s = one.status()
            ckpt = s["checkpoint"]
            saved = {int(p): o for p, o in ckpt["saved_offsets"].items()}
            covered = {int(p): o for p, o in ckpt["covered_offsets"].items()}
            # The fix itself: no committed outcome offset passes what the checkpoint covers.
            for p, offset in committed.items():
                assert offset <= saved.get(p, -1) + 1, (committed, saved)
            lag = sum(o - saved.get(p, -1) for p, o in covered.items())
            return s if saved and lag >= 20 and s["learned"] >= 100 else None

        before = wait_until(learned_past_checkpoint, timeout=40, what="learning past a checkpoint")
        one.kill()
    finally:
        one.kill()
    assert sender.is_alive(), "the outcomes were all sent before the kill: not mid-stream"

    two = WorkerProcess(settings, tmp_path / "worker-2.log", extra_env=FAST_GROUP_ENV).start()
    try:
        first = two.status()
        restored = first["checkpoint"]["restored_counters"]
        assert first["checkpoint"]["restored"] is True
        # Resumed from the checkpoint, not from zero, and from before the kill.
        assert 0 < restored["learned"] <= before["learned"]
        assert first["learned"] >= restored["learned"]
        assert first["checkpoint"]["learned_by_learner"]["river_lr"] == restored["learned"]

        sender.join(60)
        seen: dict[str, Any] = {}

        def all_dealt_with() -> dict[str, Any] | None:
            seen.update(two.status())
            return seen if status_learning(seen) >= N + 2 + REPEATS else None

        try:
            final = wait_until(all_dealt_with, timeout=60, what="every outcome dealt with")
        except AssertionError as exc:  # say how far it got
            keys = ("learned", "duplicate_outcomes", "expired_outcomes", "unknown_outcomes")
            got = {k: seen.get(k) for k in (*keys, "parked_outcomes", "outcomes")}
            raise AssertionError(f"{exc}; status {got}") from None
        time.sleep(1.0)  # anything counted twice would show up now
        final = two.status()
        assert final["learned"] == N, final
        assert final["checkpoint"]["learned_by_learner"]["river_lr"] == N
        # Every upstream repeat is counted and none relearned (learned == N above). A Kafka
        # redelivery after the kill is not relearned either, but in some CI runs ~100 of them
        # were counted as repeats rather than as skips (README, Known limits): at least REPEATS.
        assert final["duplicate_outcomes"] >= REPEATS
        assert final["expired_outcomes"] == 1 and final["unknown_outcomes"] == 1
        assert final["conflicting_outcomes"] == 0 and final["parked_outcomes"] == 0
        # The outcomes the restarted worker found already in the restored learners.
        assert final["checkpoint"]["skipped_outcomes"] >= 0

        store = worker_store(settings, timeout=60)
        _, rows = store.query_rows(
            "SELECT reason, transaction_id FROM streamlearn.unlearned_outcomes FINAL "
            "ORDER BY reason"
        )
        assert rows == [
            ("expired", expired["transaction_id"]),
            ("unknown", unknown["transaction_id"]),
        ]
        _, rows = store.query_rows(
            "SELECT uniqExact(transaction_id) FROM streamlearn.outcomes FINAL"
        )
        assert rows[0][0] == N + 2
        skipped = final["checkpoint"]["skipped_outcomes"]
        print(
            f"\nkilled at learned={before['learned']}, checkpoint restored learned="
            f"{restored['learned']}, learned after restart="
            f"{final['learned'] - restored['learned']}, skipped as already learned={skipped}"
        )
    finally:
        two.stop(timeout=30)
