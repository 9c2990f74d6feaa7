"""The learning thread without Kafka: it learns what the loop enqueues, publishes snapshots,
and a checkpoint holds exactly what was enqueued before it was requested."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.learners.learner_set import LearnerSet
from streamlearn.streams.label_join import Example, LabelJoin
from streamlearn.streams.learning import CheckpointRequest, LearningThread, restore
from streamlearn.streams.merchant_risk import MerchantRisk
from streamlearn.streams.pending import Parked

T0 = 1_790_000_000_000
KEY = b"k" * 32


def examples(n: int, start: int = 0) -> list[Example]:
    rng = np.random.default_rng(start)
    return [
        Example(
            f"t{start + i}",
            rng.random(len(FEATURE_NAMES)),
            {"river_lr": 0.3},
            "m1",
            T0,
            bool(i % 9 == 0),
            T0 + 1000,
        )
        for i in range(n)
    ]


async def run(thread: LearningThread, path: Path) -> dict[int, int] | None:
    saved: asyncio.Future[dict[int, int] | None] = asyncio.get_running_loop().create_future()
    thread.start(asyncio.get_running_loop(), lambda c: saved.done() or saved.set_result(c))
    await thread.learn(examples(300))
    thread.request_checkpoint(
        CheckpointRequest(
            {0: 41, 2: 7}, [("p1", Parked(True, T0, T0, 0, 40))], {"early_outcomes": 3}, []
        )
    )
    await thread.learn(examples(50, start=1000))  # after the request: not in the checkpoint
    covered = await asyncio.wait_for(saved, 30)
    thread.stop()
    return covered


def test_a_checkpoint_holds_what_was_enqueued_before_its_request(tmp_path: Path) -> None:
    path = tmp_path / "w.ckpt"
    learners = LearnerSet("lr,hst", FEATURE_NAMES)
    thread = LearningThread(learners, MerchantRisk(), checkpoint_path=path, key=KEY)
    assert asyncio.run(run(thread, path)) == {0: 41, 2: 7}
    assert learners.counters["learned"] == 350 and thread.backlog == 0
    assert thread.snapshot is not None and len(thread.published.status) > 0

    again = LearnerSet("lr,hst", FEATURE_NAMES)
    restored = restore(path, KEY, again)
    assert restored is not None
    state, offsets = restored
    assert offsets == {0: 41, 2: 7} and again.counters["learned"] == 300
    assert again.learned.get("t0") is not None and again.learned.get("t1000") is None
    join = LabelJoin(pending_max=10, label_horizon_days=90, early_wait_s=60)
    join.restore(state)
    assert join.early.get("p1") == Parked(True, T0, T0, 0, 40)
    assert join.counters["early_outcomes"] == 3
    # Another key (e.g. the signing key set since): refused, the learners start anew.
    assert restore(path, b"x" * 32, LearnerSet("lr,hst", FEATURE_NAMES)) is None
