"""Concept drift end to end: a stale champion, the detectors, and the learners that adapt.

A seeded simulator replays three phases through a real worker (lr, arf, hst learners):
A  pre-drift history (no model yet), then a LightGBM champion is trained on it and served;
B  pre-drift traffic scored by that champion while the blend warms up;
C  the simulator's drift: amounts x1.35 and more online payments for everyone (data drift),
   and fraud that now looks like the cardholder's own spending (concept drift).

Asserted, from what the worker served (scores logged in `streamlearn.transactions`, outcomes
in `streamlearn.labels`), never from recomputed scores:
- the concept-drift detector (ADWIN on the champion's log loss, per class) stays silent in B
  and fires within 4,000 labeled post-drift events (DETECTION_LABELS; measured 1,924-2,000
  with B and C published in chunks, 788-3,126 without);
- data-drift events name the features the simulator changed, `amount` and `log_amount`, only
  after the drift (the PSI threshold is 0.05 here: the drift moves amounts by a PSI of ~0.08,
  under the default 0.2 of a "significant" shift); the reference is the served champion's
  training rows (the quantile bins its release carries), against which the amounts served
  before the drift stay under a PSI of 0.05;
- over the post-drift window (C after its first 2,000 events, ADAPT) every supervised learner
  (lr, arf) and the blend rank better (ROC AUC) than the stale champion (hst, unsupervised,
  is printed, not asserted);
- over B after the blend's warm-up (its first 2,000 events with the champion, WARMUP) the
  blend's AUC is within 0.01 of the best component's;
- each drift event is on the drift-events topic (key kind:subject) and in drift_events.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from streamlearn.batch_retrain.pipeline import run_retrain
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store.access import RemoteStore, worker_store
from streamlearn.schemas import Serde
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import DRIFTED_FEATURES, OutcomeDelays, SimEvent, Simulator
from streamlearn.tools.simulate.replay import Replayer
from tests.integration.kafka_helpers import consume_all, wait_until

DAY_MS = 86_400_000
PER_DAY = 5000  # events per day of event time (no daily cycle)
N_A, N_B, N_C = 8000, 6000, 8000
WARMUP = 2000  # B events the blend gets to weigh the newly served champion (~40 frauds)
ADAPT = 2000  # C events before the post-drift window (the learners adapt meanwhile)
# Labeled post-drift events by which the concept-drift detector must have fired.
DETECTION_LABELS = 4000
CHUNK = 1000  # B and C are published in chunks of this many events (see live_phase)
LEARNERS = ("river_lr", "river_arf")  # supervised learners; river_hst is an anomaly score

SCORES_SQL = """
SELECT t.transaction_id, t.scores, l.is_fraud
FROM streamlearn.transactions AS t FINAL
JOIN streamlearn.labels AS l USING transaction_id
WHERE t.transaction_id IN {ids:Array(String)}
"""


def store_of(settings: Settings) -> RemoteStore:
    return worker_store(settings, timeout=60)


def served_aucs(settings: Settings, ids: list[str]) -> dict[str, float]:
    """ROC AUC of every component score as served, over the labeled transactions `ids`."""
    _, rows = store_of(settings).query_rows(SCORES_SQL, {"ids": ids})
    assert len(rows) == len(ids), (len(rows), len(ids))
    y = np.array([bool(r[2]) for r in rows])
    scores = [dict(r[1]) for r in rows]  # a Map arrives as (key, value) pairs
    names = sorted(set.intersection(*(set(s) for s in scores)))
    return {
        n: float(roc_auc_score(y, np.array([s[n] for s in scores]))) for n in names if n != "shadow"
    } | {"frauds": float(y.sum()), "rows": float(len(y))}


def phase(replayer: Replayer, events: Iterator[SimEvent], n: int, until_ms: int) -> list[str]:
    """Publish n events and every outcome known by until_ms; the ids published."""
    batch = list(itertools.islice(events, n))
    replayer.publish(iter(batch))
    replayer.release_until(until_ms)
    return [e.transaction["transaction_id"] for e in batch]


def wait_learned(worker: WorkerProcess, replayer: Replayer, timeout: float) -> dict[str, Any]:
    worker.wait_for("transactions", replayer.counts.transactions, timeout=timeout)
    worker.wait_for("outcomes", replayer.counts.outcomes, timeout=timeout)
    return worker.wait_for("learned", replayer.counts.outcomes, timeout=timeout)


def live_phase(
    worker: WorkerProcess,
    replayer: Replayer,
    events: Iterator[SimEvent],
    n: int,
    until_ms: int,
    timeout: float,
) -> tuple[list[str], dict[str, Any]]:
    """Publish n events in chunks, each scored and its outcomes learned before the next.

    Outcomes come after their transactions in production; published all at once, the worker
    could score a whole phase before it learned any of its outcomes (how far it gets depends on
    the machine's load), and the learners' window AUCs would measure that race, not learning.
    """
    ids: list[str] = []
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    for _ in range(0, n, CHUNK):
        ids += phase(replayer, events, min(CHUNK, n - len(ids)), until_ms)
        status = wait_learned(worker, replayer, max(5.0, deadline - time.monotonic()))
    return ids, status


@pytest.mark.timeout(360)
def test_concept_drift_detected_and_learners_beat_the_stale_champion(
    settings: Settings, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    settings = settings.with_overrides(drift_psi_threshold=0.05, learners="lr,arf,hst")
    sim = Simulator(
        seed=21, cards=2000, merchants=250, fraud_rate=0.02, delays=OutcomeDelays.scaled(600)
    )
    sim.set_drift(index=N_A + N_B)
    start = int(time.time() * 1000) - 5 * DAY_MS
    events = sim.events(start, rate_per_s=PER_DAY / 86_400, diurnal=False)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        replayer = Replayer(settings)
        # A: history before any model; every outcome of it is released before B starts.
        phase(replayer, events, N_A, start + 10 * DAY_MS)
        status = wait_learned(worker, replayer, 90)
        assert status["learners"] == ["river_lr", "river_arf", "river_hst"]
        t_a = time.monotonic()

        result = run_retrain(settings, store_of(settings), maturity_s=3600, reason="drift-test")
        assert result.published and result.status == "champion", result
        wait_until(
            lambda: worker.status()["model_version"] == result.version,
            timeout=30,
            what=f"the worker to serve {result.version}",
        )
        t_r = time.monotonic()

        # B: pre-drift traffic served by the champion (then the blend).
        ids_b, status = live_phase(worker, replayer, events, N_B, start + 10 * DAY_MS, 120)
        concept = status["concept_drift"]
        before = concept["labels"]
        assert before > 0 and concept["subject"] == "lightgbm"
        assert not concept["detections"], f"concept drift before the drift: {concept}"
        data_before = {e["subject"] for e in status["drift_events"] if e["kind"] == "data"}
        assert not data_before & {"amount", "log_amount"}, data_before
        # Measured against the rows the champion trained on, the amounts it serves match them.
        assert status["drift_reference"] == f"model {result.version}", status["drift_reference"]
        psi_before = status["drift_psi"]
        assert max(psi_before["amount"], psi_before["log_amount"]) < 0.05, psi_before
        assert not data_before & {"hour_of_day", "day_of_week"}, data_before  # not watched
        t_b = time.monotonic()

        # C: the drift.
        ids_c, status = live_phase(worker, replayer, events, N_C, start + 10 * DAY_MS, 150)
        assert sim.drift_event == N_A + N_B
        status = wait_learned(worker, replayer, 120)
        t_c = time.monotonic()

        concept = status["concept_drift"]
        assert concept["detections"], f"no concept drift in {concept['labels'] - before} labels"
        delay = concept["detections"][0] - before
        data_after = {e["subject"] for e in status["drift_events"] if e["kind"] == "data"}
        pre = served_aucs(settings, ids_b[WARMUP:])
        post = served_aucs(settings, ids_c[ADAPT:])
        print(
            f"\nphases A {t_a - t0:.0f}s, retrain {t_r - t_a:.0f}s, B {t_b - t_r:.0f}s, "
            f"C {t_c - t_b:.0f}s; concept drift after {delay} post-drift labels; "
            f"data drift after it: {sorted(data_after - data_before)}; before it (against "
            f"{status['drift_reference']}): {sorted(data_before)}"
        )
        print(
            f"PSI of amount before the drift {psi_before['amount']:.3f}, after it "
            f"{status['drift_psi']['amount']:.3f}"
        )
        print(f"pre-drift AUC (B after {WARMUP}): {pre}")
        print(f"post-drift AUC (C after {ADAPT}): {post}")
        print(f"blend {status['blend']}")

        assert 0 < delay <= DETECTION_LABELS, (delay, concept)
        # The features the simulator moved for everyone are reported, and only after the drift.
        assert {"amount", "log_amount"} <= data_after - data_before, (data_after, data_before)
        assert set(DRIFTED_FEATURES) >= {"amount", "log_amount"}

        best = max(pre[n] for n in ("lightgbm", *LEARNERS, "river_hst"))
        assert pre["blend"] >= best - 0.01, pre
        for name in (*LEARNERS, "blend"):
            assert post[name] > post["lightgbm"], (name, post)

        # Every drift event reached the topic (key kind:subject), then the table.
        serde = Serde("DriftEvent")
        expected = {(e["kind"], e["subject"]) for e in status["drift_events"]}
        assert ("concept", "lightgbm") in expected and len(status["drift_events"]) < 100

        def on_topic() -> list[tuple[str, dict[str, Any]]] | None:
            records = consume_all(settings, settings.topic("drift-events"))
            out = [(r.key.decode(), serde.decode(r.value)) for r in records]
            return out if expected <= {(r["kind"], r["subject"]) for _, r in out} else None

        published = wait_until(on_topic, timeout=30, what=f"{expected} on drift-events")
        for key, record in published:
            assert key == f"{record['kind']}:{record['subject']}"
        concept_records = [r for k, r in published if k == "concept:lightgbm"]
        assert f"after {concept['detections'][0]} labels" in concept_records[0]["details"]
        on_kafka = {(r["kind"], r["subject"]) for _, r in published}

        def stored() -> set[tuple[str, str]] | None:
            _, rows = store_of(settings).query_rows(
                "SELECT DISTINCT kind, subject FROM streamlearn.drift_events"
            )
            found = {(k, s) for k, s in rows}
            return found if found >= on_kafka else None

        assert wait_until(stored, timeout=30, what="drift_events rows") == on_kafka
    finally:
        worker.stop(timeout=30)
