"""The model lifecycle against the real broker and a running worker (issue 4, "done when").

1. A first model is trained and served; the simulator's drift reaches the worker, whose
   drift events (streamlearn.drift_events) trigger a retrain in the `retrain --watch` loop; the
   challenger passes the gate, is promoted, and the running worker swaps to it between batches
   while traffic flows (no transaction lost or scored twice); `streamlearn models rollback`
   brings the first model back. The registry query of the README names the model of a
   transaction, its training window and metrics.
2. A shadow model is scored beside the champion on live traffic and promoted by the live
   comparison; a worse challenger is rejected by the offline gate; a tampered release is
   refused with the served models kept (the champion case is in test_pipeline.py's
   test_hot_swap_and_tampered_release; here it targets the shadow slot); a worse shadow is
   rejected live (via `streamlearn models shadow-check`) and cleared from the worker.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.gate import GateConfig
from streamlearn.batch_retrain.pipeline import run_retrain
from streamlearn.batch_retrain.publish import publish_release
from streamlearn.batch_retrain.registry import WHO_SCORED_SQL
from streamlearn.batch_retrain.shadow import check_shadow
from streamlearn.batch_retrain.triggers import TriggerConfig
from streamlearn.batch_retrain.watch import watch
from streamlearn.foundation.clock import DAY_MS
from streamlearn.foundation.settings import Settings, settings_env
from streamlearn.foundation.store.access import RemoteStore, worker_store
from streamlearn.schemas import Serde
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import DRIFTED_FEATURES, OutcomeDelays, Simulator
from streamlearn.tools.simulate.replay import Replayer
from tests.integration.kafka_helpers import consume_all, wait_until

# Labels known 1-3 minutes (legit) or 1-10 minutes (fraud) of event time after the payment,
# so a 15-minute maturity sees every label and days of history replay in seconds.
DELAYS = OutcomeDelays(60, 180, 60, 600)
MATURITY_S = 900
# A deliberately weak model: one tree with two leaves.
STUMP = {"num_boost_round": 1, "params": {"num_leaves": 2, "min_data_in_leaf": 20}}
# An offline gate that lets anything through (an operator trying a model in shadow).
ANY = GateConfig(margin=-1.0, tolerances={})
PREDICTION = Serde("Prediction")


def now_ms() -> int:
    return int(time.time() * 1000)


def store_of(settings: Settings) -> RemoteStore:
    return worker_store(settings, timeout=120)


def wait_status(worker: WorkerProcess, check: Any, *, timeout: float, what: str) -> dict:
    def probe() -> dict | None:
        status = worker.status()
        return status if check(status) else None

    return wait_until(probe, timeout=timeout, what=what)


def wait_stored(settings: Settings, worker: WorkerProcess, replay: Replayer) -> None:
    """Until the worker scored and stored every transaction and outcome the replay sent."""
    transactions, outcomes = replay.counts.transactions, replay.counts.outcomes
    worker.wait_for("transactions", transactions, timeout=90)
    worker.wait_for("outcomes", outcomes, timeout=90)
    wait_until(
        lambda: (
            store_of(settings).query_rows("SELECT count() FROM streamlearn.transactions FINAL")[1][
                0
            ][0]
            >= transactions
        ),
        timeout=60,
        what=f"{transactions} transactions in ClickHouse",
    )


def cli(settings: Settings, *args: str) -> str:
    """Run `streamlearn ARGS` as a user would, with the test's settings; return its output."""
    import os

    done = subprocess.run(
        [sys.executable, "-m", "streamlearn", *args],
        env={**os.environ, **settings_env(settings), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# --- 1. drift -> retrain -> promotion -> live swap -> rollback --------------------------------


@pytest.mark.timeout(300)
def test_drift_retrain_promotion_live_swap_and_rollback(settings: Settings, tmp_path: Path) -> None:
    t0 = time.monotonic()
    # Amount x1.35 after the drift is a PSI of ~0.09 (test_drift.py): below the default 0.2.
    # Inference cost reaches model_usage every 2 s instead of every minute.
    settings = settings.with_overrides(drift_psi_threshold=0.05, usage_flush_s=2.0)
    now = now_ms()
    sim = Simulator(seed=21, cards=1500, merchants=200, fraud_rate=0.02, delays=DELAYS)
    replay = Replayer(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        store = store_of(settings)
        history = replay.publish(
            sim.events(now - 3 * DAY_MS, until_ms=now - 3 * DAY_MS // 2)
        ).transactions
        replay.release_until(now - 3 * DAY_MS // 2)
        wait_stored(settings, worker, replay)
        first = run_retrain(settings, store, maturity_s=MATURITY_S, reason="first model")
        assert first.status == "champion" and first.published, first.decision.reason
        wait_status(
            worker, lambda s: s["model_version"] == first.version, timeout=30, what="first model"
        )
        first_at = int(registry.get(store, first.version).created_at.timestamp() * 1000)
        print(f"history {history} events, first model {time.monotonic() - t0:.0f}s")

        # The drift: amounts, channels and a new fraud pattern from here on.
        sim.set_drift(index=sim.seq)
        replay.publish(sim.events(now - 3 * DAY_MS // 2, until_ms=now - 10 * 60_000))
        replay.release_until(now - 5 * 60_000)
        assert sim.drifted
        wait_stored(settings, worker, replay)
        drift_after_first = wait_until(
            lambda: store.query_rows(
                "SELECT count() FROM streamlearn.drift_events "
                "WHERE toUnixTimestamp64Milli(time) > {t:Int64} AND kind = 'data' "
                "AND has({drifted:Array(String)}, subject)",
                {"t": first_at, "drifted": list(DRIFTED_FEATURES)},
            )[1][0][0],
            timeout=60,
            what="a drift event on a feature the simulator drifted, after the first model",
        )
        print(f"{drift_after_first} drift events on drifted features after the first model")
        # Measured against the rows the served model trained on; the clock is not watched.
        reference = f"model {first.version}"
        wait_until(
            lambda: worker.status()["drift_reference"] == reference,
            timeout=15,
            what=f"the drift reference to be {reference}",
        )
        calendar = store.query_rows(
            "SELECT count() FROM streamlearn.drift_events WHERE kind = 'data' "
            "AND subject IN ('hour_of_day', 'day_of_week')"
        )[1][0][0]
        assert calendar == 0

        # Live traffic flows while the watch loop retrains and the new model is published.
        live_sim = Simulator(seed=22, cards=400, merchants=100, fraud_rate=0.02, delays=DELAYS)
        live_replay = Replayer(settings)
        stop = threading.Event()
        sent: dict[str, Any] = {}

        def live() -> None:
            events = live_sim.events(now_ms(), rate_per_s=150, count=20_000, diurnal=False)
            sent["counts"] = live_replay.publish(events, rate=150, stop=stop)

        producer = threading.Thread(target=live, daemon=True)
        producer.start()
        said: list[str] = []
        runs = watch(
            settings,
            store,
            TriggerConfig(schedule_s=1e9, cooldown_s=0, min_matured_labels=100, auc_floor=0.0),
            interval_s=1,
            max_runs=1,
            max_rounds=3,
            on_event=said.append,
            maturity_s=MATURITY_S,
        )
        print("\n".join(said))
        assert runs == 1, said
        second = registry.entries(store)[0]
        assert second.version != first.version
        assert second.trigger.startswith("drift: "), second.trigger
        assert "drift event(s) since the last run" in second.trigger
        assert second.status == "champion", second.decision
        assert second.compared_with == first.version and second.compared_rows > 0
        assert second.gate_metrics["holdout_ap"] >= second.champion_metrics["holdout_ap"]
        assert registry.get(store, first.version).status == "retired"
        wait_status(
            worker,
            lambda s: s["model_version"] == second.version,
            timeout=30,
            what="the running worker to serve the promoted model",
        )
        time.sleep(2)  # traffic goes on after the swap
        stop.set()
        producer.join(timeout=30)
        live_count = sent["counts"].transactions
        assert live_count > 300
        # The promoted model's training rows are the data-drift reference from the swap on.
        reference = f"model {second.version}"
        wait_until(
            lambda: worker.status()["drift_reference"] == reference,
            timeout=15,
            what=f"the drift reference to be {reference}",
        )

        total = replay.counts.transactions + live_count
        wait_until(
            lambda: (
                store.query_rows("SELECT count() FROM streamlearn.transactions FINAL")[1][0][0]
                >= total
            ),
            timeout=60,
            what=f"{total} transactions in ClickHouse",
        )
        _, rows = store.query_rows(
            "SELECT transaction_id, model_version, source_partition, source_offset, "
            "toUnixTimestamp64Milli(event_time) FROM streamlearn.transactions FINAL"
        )
        # Exactly one row per transaction sent, each with the version that scored it.
        assert len(rows) == len({r[0] for r in rows}) == total
        version_of = {r[0]: r[1] for r in rows}
        live_rows = [r for r in rows if r[4] >= now - 60_000]
        assert len(live_rows) == live_count
        assert {r[1] for r in live_rows} == {first.version, second.version}
        # The swap is atomic per partition: in offset order, first-model rows then new-model rows.
        order = {first.version: 0, second.version: 1}
        by_partition: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for r in live_rows:
            by_partition[r[2]].append((r[3], r[1]))
        for partition, seq in by_partition.items():
            versions = [order[v] for _, v in sorted(seq)]
            assert versions == sorted(versions), f"partition {partition} swapped back and forth"

        # The predictions topic: every transaction exactly once, with the version in ClickHouse.
        preds = [
            PREDICTION.decode(r.value) for r in consume_all(settings, settings.topic("predictions"))
        ]
        per_id = Counter(p["transaction_id"] for p in preds)
        assert len(per_id) == total and set(per_id.values()) == {1}
        for p in preds:
            assert p["model_version"] == version_of[p["transaction_id"]], p

        # The registry answers in one query who scored a transaction, trained on what, and how.
        swapped = next(r for r in sorted(live_rows, key=lambda r: r[4]) if r[1] == second.version)
        names, answer = store.query_rows(WHO_SCORED_SQL, {"id": swapped[0]})
        assert len(answer) == 1
        got = dict(zip(names, answer[0], strict=True))
        assert got["model_version"] == second.version and got["status"] == "champion"
        assert got["trigger"] == second.trigger
        assert registry.as_utc(got["train_end"]) == second.train_end
        assert got["rows_train"] == second.rows_train
        assert got["holdout_ap"] == pytest.approx(second.metrics["holdout_ap"])
        assert got["decision"] == second.decision and got["compared_with"] == first.version
        print(f"swap checked {time.monotonic() - t0:.0f}s")

        # `streamlearn models rollback`: the first model serves again on the running worker.
        out = cli(settings, "models", "rollback")
        assert f"{first.version} is champion again (was {second.version})" in out
        wait_status(
            worker,
            lambda s: s["model_version"] == first.version,
            timeout=30,
            what="the rollback to reach the worker",
        )
        assert registry.current_champion(store).version == first.version
        assert registry.get(store, second.version).reason == f"rolled back to {first.version}"
        after = list(live_sim.events(now_ms(), rate_per_s=100, count=100, diurnal=False))
        Replayer(settings).publish(iter(after))
        worker.wait_for("transactions", total + len(after), timeout=60)
        reference = f"model {first.version}"  # the rollback's, again
        wait_until(
            lambda: worker.status()["drift_reference"] == reference,
            timeout=15,
            what=f"the drift reference to be {reference}",
        )
        _, rows = store.query_rows(
            "SELECT model_version, count() FROM streamlearn.transactions FINAL "
            "WHERE has({ids:Array(String)}, transaction_id) GROUP BY model_version",
            {"ids": [e.transaction["transaction_id"] for e in after]},
        )
        assert rows == [(first.version, len(after))]

        # What each model cost: training CPU beside the inference CPU the worker metered.
        from streamlearn.batch_retrain.costs import model_costs

        def metered() -> Any:
            c = model_costs(store).set_index("version")
            return c if c.loc[[first.version, second.version], "predictions"].min() > 0 else None

        costs = wait_until(
            lambda: (c,) if (c := metered()) is not None else None,
            timeout=30,
            what="inference cost of both models in model_usage",
        )[0]
        for version in (first.version, second.version):
            row = costs.loc[version]
            assert row["train_cpu"] == pytest.approx(registry.get(store, version).train_cpu_s)
            assert row["inference_cpu_s"] > 0
            assert row["cpu_s_per_1k"] == pytest.approx(
                1000 * row["inference_cpu_s"] / row["predictions"]
            )
        listing = cli(settings, "models")
        print(listing)
        assert "per 1k predictions" in listing and "inference > training" in listing
        print(f"done {time.monotonic() - t0:.0f}s")
    finally:
        worker.stop(timeout=30)


# --- 2. shadow promoted, worse challenger rejected, tampered shadow refused, shadow rejected ---


@pytest.mark.timeout(300)
def test_shadow_promoted_live_worse_models_rejected_and_tampered_refused(
    settings: Settings, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    # A stump scores nearly every transaction at the base rate, so its calibration error is
    # ~0: the ECE tolerance is loosened (STREAMLEARN_GATE_TOL_ECE) for a real model to beat it.
    settings = settings.with_overrides(
        shadow_min_labels=1000, shadow_min_positives=20, gate_tol_ece=0.03
    )
    now = now_ms()
    sim = Simulator(seed=31, cards=1500, merchants=200, fraud_rate=0.02, delays=DELAYS)
    replay = Replayer(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        store = store_of(settings)
        history = replay.publish(sim.events(now - 3 * DAY_MS, until_ms=now - DAY_MS)).transactions
        replay.release_until(now - DAY_MS)
        wait_stored(settings, worker, replay)

        # A weak champion (a stump trained on the first half of the history) ...
        weak = run_retrain(
            settings,
            store,
            maturity_s=MATURITY_S,
            as_of_ms=now - 2 * DAY_MS,
            train_options=STUMP,
            reason="weak",
        )
        assert weak.status == "champion", weak.decision.reason
        # ... and a full model that passes the offline gate against it goes to shadow.
        shadow = run_retrain(settings, store, maturity_s=MATURITY_S, shadow=True, reason="shadow")
        assert shadow.status == "shadow" and shadow.published, shadow.decision.reason
        assert shadow.decision.promote and shadow.decision.champion_version == weak.version
        status = wait_status(
            worker,
            lambda s: s["shadow_version"] == shadow.version,
            timeout=30,
            what="the shadow to reach the worker",
        )
        assert status["model_version"] == weak.version
        print(f"history {history} events, shadow out {time.monotonic() - t0:.0f}s")

        # Live traffic scored by both; until it matures the comparison waits.
        early = check_shadow(settings, store, maturity_s=MATURITY_S)
        assert early.action == "wait", early.reason
        phase1 = replay.publish(sim.events(now - DAY_MS, until_ms=now - DAY_MS // 2))
        phase1 = phase1.transactions - history
        replay.release_until(now - DAY_MS // 2)
        wait_stored(settings, worker, replay)
        _, rows = store.query_rows(
            "SELECT count(), countIf(mapContains(scores, 'shadow') AND scores['shadow'] != "
            "scores['lightgbm']) FROM streamlearn.transactions FINAL "
            "WHERE shadow_version = {s:String} AND model_version = {c:String}",
            {"s": shadow.version, "c": weak.version},
        )
        assert rows[0][0] == phase1 and rows[0][1] > 0
        promoted = check_shadow(settings, store, maturity_s=MATURITY_S)
        assert promoted.action == "promote", promoted.reason
        entry = registry.get(store, shadow.version)
        assert entry.status == "champion" and entry.live_decision.startswith("live: ap ")
        assert entry.live_rows >= 1000 and entry.live_rows == promoted.rows
        assert entry.live_metrics["live_ap"] >= entry.live_champion_metrics["live_ap"]
        assert registry.get(store, weak.version).status == "retired"
        wait_status(
            worker,
            lambda s: s["model_version"] == shadow.version and s["shadow_version"] is None,
            timeout=30,
            what="every worker to serve the promoted shadow",
        )
        print(f"shadow promoted {time.monotonic() - t0:.0f}s")

        # A worse challenger (a stump) is rejected by the offline gate; nothing is published.
        worse = run_retrain(
            settings, store, maturity_s=MATURITY_S, train_options=STUMP, reason="worse"
        )
        assert worse.status == "rejected" and not worse.published
        assert worse.decision.champion_version == shadow.version
        assert registry.get(store, worse.version).decision == worse.decision.reason
        assert worse.decision.reason.startswith(("ap ", "auc ", "p_at_k_day ", "logloss ", "ece "))

        # Tried in shadow anyway (an offline gate that lets anything through) ...
        tried = run_retrain(
            settings,
            store,
            maturity_s=MATURITY_S,
            train_options={**STUMP, "seed": 8},
            gate=ANY,
            shadow=True,
            reason="trial",
        )
        assert tried.status == "shadow", tried.decision.reason
        wait_status(
            worker,
            lambda s: s["shadow_version"] == tried.version,
            timeout=30,
            what="the second shadow to reach the worker",
        )
        # ... a tampered shadow release is refused and the served pair stays.
        from streamlearn.batch_retrain.artifacts import load_release

        tampered = {
            **load_release(store, worse.version),
            "role": "shadow",
            "version": "v-tampered",
        }
        tampered["model"] = tampered["model"] + b"\n"
        publish_release(settings, tampered)
        status = wait_status(
            worker,
            lambda s: (s.get("dead_letters") or {}).get("model", 0) >= 1,
            timeout=30,
            what="the tampered shadow to be dead-lettered",
        )
        assert any(v == "v-tampered" for v, _ in status["models_refused"])
        assert (status["model_version"], status["shadow_version"]) == (
            shadow.version,
            tried.version,
        )

        # ... and rejected by the live comparison, through the CLI: the worker drops it.
        replay.publish(sim.events(now - DAY_MS // 2, until_ms=now - 60_000))
        replay.release_until(now)
        wait_stored(settings, worker, replay)
        out = cli(settings, "models", "shadow-check", "--maturity-s", str(MATURITY_S))
        assert f"shadow {tried.version} vs champion {shadow.version}: reject — live: " in out
        entry = registry.get(store, tried.version)
        assert entry.status == "rejected" and entry.live_decision.startswith("live: ")
        assert entry.live_metrics["live_ap"] < entry.live_champion_metrics["live_ap"]
        assert (
            entry.gate
            == "ap margin +0; tolerances auc 0.01, p_at_k_day 0.05, logloss 0.005, ece 0.03; "
            "noise 2 se"
        )
        wait_status(
            worker,
            lambda s: s["shadow_version"] is None and s["model_version"] == shadow.version,
            timeout=30,
            what="the rejected shadow to be cleared on the worker",
        )
        assert registry.current_champion(store).version == shadow.version
        assert registry.current_shadow(store) is None
        listing = cli(settings, "models")
        print(listing)
        for version in (weak.version, shadow.version, worse.version, tried.version):
            assert version in listing
        print(f"done {time.monotonic() - t0:.0f}s")
    finally:
        worker.stop(timeout=30)
