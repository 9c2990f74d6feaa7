"""Training learns a real signal; the retrain pipeline registers, gates and records models."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.gate import GateConfig
from streamlearn.batch_retrain.pipeline import decide, run_retrain
from streamlearn.batch_retrain.train import refit_on_every_row, train
from streamlearn.batch_retrain.training_set import Split, TrainingSet
from streamlearn.domain.features import FEATURE_NAMES, FEATURE_VERSION
from streamlearn.domain.release import build_release, resign
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store

NAMES = ("amount", "velocity", "noise")


def synthetic(n: int, seed: int = 0, names=NAMES) -> tuple[np.ndarray, np.ndarray]:
    """About 3% fraud, driven by a non-linear mix of the first two features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(names)))
    logit = -4.5 + 1.5 * X[:, 0] + 2.0 * (X[:, 1] > 1.0) + 0.8 * X[:, 0] * X[:, 1]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return X, y


def make_set(n: int = 30_000, seed: int = 0) -> TrainingSet:
    X, y = synthetic(n, seed)
    et = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 60_000
    i1, i2 = int(n * 0.7), int(n * 0.85)

    def part(a: int, b: int) -> Split:
        return Split(X[a:b], y[a:b], np.ones(b - a), et[a:b])

    return TrainingSet(
        feature_names=NAMES,
        train=part(0, i1),
        valid=part(i1, i2),
        holdout=part(i2, n),
        as_of=int(et[-1]),
        cutoff=int(et[-1]),
        train_start=int(et[0]),
        train_end=int(et[i2 - 1]),
        holdout_start=int(et[i2]),
        holdout_end=int(et[-1]),
        rows_available=n,
        positives_available=int(y.sum()),
        legit_weight=1.0,
    )


@pytest.fixture(scope="module")
def trained():
    ts = make_set()
    return ts, train(ts, num_threads=2)


def test_learns_the_signal(trained):
    ts, result = trained
    assert result.metrics["holdout_auc"] > 0.8
    assert result.metrics["valid_auc"] > 0.8
    assert result.metrics["holdout_ap"] > 2 * ts.holdout.y.mean()
    assert 1 <= result.best_iteration <= 500
    assert result.booster.num_trees() == result.best_iteration
    assert result.train_cpu_s > 0 and result.train_wall_s > 0
    assert result.scale_pos_weight > 1


def test_scores_stay_calibrated_despite_positive_weighting(trained):
    ts, result = trained
    score = result.booster.predict(ts.holdout.X)
    assert abs(score.mean() - ts.holdout.y.mean()) < 0.5 * ts.holdout.y.mean()


def test_training_is_deterministic(trained):
    ts, result = trained
    again = train(ts, num_threads=2)
    assert again.booster.model_to_string() == result.booster.model_to_string()


def test_refits_keep_the_rounds_and_say_what_they_learned(trained):
    ts, result = trained
    # The judged model: the same rounds on train and validation, measured on the holdout.
    judged = refit_on_every_row(ts, result, holdout=False)
    assert judged.booster.num_trees() == result.best_iteration
    assert judged.refit_rows == ts.train.rows + ts.valid.rows and not judged.learned_holdout
    assert judged.metrics["holdout_auc"] != result.metrics["holdout_auc"]
    assert judged.metrics["holdout_auc"] > 0.8 and judged.metrics["refit_rows"] == judged.refit_rows
    # The served model: the holdout learned too; the metrics stay the judged model's.
    served = refit_on_every_row(ts, judged)
    assert served.booster.num_trees() == result.best_iteration and served.learned_holdout
    assert served.refit_rows == ts.rows_available
    assert served.metrics["holdout_auc"] == judged.metrics["holdout_auc"]
    assert served.booster.model_to_string() != judged.booster.model_to_string()


def test_decide():
    assert decide({"holdout_ap": 0.3}, None).promote
    champ = {"holdout_ap": 0.5}
    assert decide({"holdout_ap": 0.5}, champ, champion_version="v1").promote
    lenient = GateConfig(margin=-0.005)  # may trail by 0.005
    assert decide({"holdout_ap": 0.498}, champ, champion_version="v1", config=lenient).promote
    worse = decide({"holdout_ap": 0.4}, champ, champion_version="v1")
    assert not worse.promote and "v1" in worse.reason
    assert not decide({"holdout_ap": float("nan")}, champ).promote


# --- the pipeline on an embedded store, without Kafka (publish=False) ---

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def fill_store(store: Store, n: int = 6000) -> None:
    """n logged transactions, 3 minutes apart, with fraud reported 6 hours later."""
    X, y = synthetic(n, seed=5, names=FEATURE_NAMES)
    rows, outcomes = [], []
    for i in range(n):
        at = T0 + dt.timedelta(minutes=3 * i)
        features = dict(zip(FEATURE_NAMES, X[i].tolist(), strict=True))
        rows.append(
            [f"t{i}", at, f"c{i % 50}", "m", 1.0, "EUR", FEATURE_VERSION, features, at, 0, i]
        )
        if y[i]:
            outcomes.append([f"t{i}", True, at + dt.timedelta(hours=6), at, 0, i])
    # Columns left out take their defaults (empty scores, NULL country, ...).
    store.insert(
        "transactions",
        rows,
        (
            "transaction_id",
            "event_time",
            "card_id",
            "merchant_id",
            "amount",
            "currency",
            "feature_version",
            "features",
            "scored_at",
            "source_partition",
            "source_offset",
        ),
    )
    store.insert(
        "outcomes",
        outcomes,
        (
            "transaction_id",
            "is_fraud",
            "event_time",
            "received_at",
            "source_partition",
            "source_offset",
        ),
    )


@pytest.fixture
def store(tmp_path):
    s = Store(f"chdb://{tmp_path}/ch")
    s.migrate()
    fill_store(s)
    yield s
    s.close()


def test_offline_retrain_registers_a_candidate(store, tmp_path):
    settings = Settings(state_dir=tmp_path, label_maturity_days=1.0, model_signing_key="k")
    result = run_retrain(settings, store, publish=False, reason="test")
    assert result.status == "candidate" and not result.published
    assert result.decision.promote  # no champion served: the gate would promote
    assert result.metrics["holdout_auc"] > 0.75
    assert result.rows["rows_train"] > result.rows["rows_valid"] > 0
    assert set(result.timings) >= {"build_s", "train_cpu_s", "train_wall_s", "total_s"}
    models = registry.list_models(store)
    assert list(models["version"]) == [result.version]
    entry = registry.get(store, result.version)
    assert entry.status == "candidate" and entry.rows_train == result.rows["rows_train"]
    assert entry.feature_names == list(FEATURE_NAMES) and entry.train_cpu_s > 0
    assert registry.current_champion(store) is None


def test_champion_is_scored_on_the_same_fresh_holdout(store, tmp_path):
    settings = Settings(state_dir=tmp_path, label_maturity_days=1.0, model_signing_key="k")
    first = run_retrain(settings, store, publish=False)
    registry.set_status(store, first.version, "champion")
    assert registry.current_champion(store).version == first.version
    champion = _release_of(store, settings, first.version)

    # The champion's twin ties on the holdout rows after the champion's window: promoted.
    twin = run_retrain(settings, store, publish=False, champion_source=lambda: champion)
    d = twin.decision
    assert d.promote and d.champion_version == first.version
    assert d.compared_rows == twin.rows["rows_holdout"]
    assert d.champion_metrics["holdout_ap"] == pytest.approx(d.challenger_metrics["holdout_ap"])

    # A stricter gate (must beat the champion by 1.0 AP) rejects it, and the registry says so.
    strict = run_retrain(
        settings,
        store,
        publish=False,
        gate=GateConfig(margin=1.0),
        champion_source=lambda: champion,
    )
    assert not strict.decision.promote and strict.status == "rejected"
    entry = registry.get(store, strict.version)
    assert entry.status == "rejected" and entry.trigger == "manual"
    assert entry.decision == strict.decision.reason and "margin" in entry.decision
    assert entry.compared_with == first.version and entry.compared_rows == d.compared_rows
    assert set(entry.gate_metrics) >= {"holdout_ap", "holdout_auc", "holdout_p_at_k_day"}
    assert entry.champion_metrics["holdout_ece"] == pytest.approx(d.champion_metrics["holdout_ece"])
    assert registry.current_champion(store).version == first.version


def test_only_holdout_rows_after_the_champion_window_are_compared(store, tmp_path):
    settings = Settings(state_dir=tmp_path, label_maturity_days=1.0, model_signing_key="k")
    first = run_retrain(settings, store, publish=False)
    champion = _release_of(store, settings, first.version)
    # Retrained as of an older data clock, the challenger's holdout is inside the champion's
    # window: nothing to compare on, and the champion (newer data) stays.
    early = int((T0 + dt.timedelta(days=6)).timestamp() * 1000)
    older = run_retrain(
        settings,
        store,
        publish=False,
        as_of_ms=early,
        champion_source=lambda: champion,
        min_positives=5,
        min_rows=100,
    )
    assert not older.decision.promote and "not comparable" in older.decision.reason
    assert older.status == "rejected"
    # A champion whose window covers half the holdout is judged on the other half only.
    fresher = run_retrain(settings, store, publish=False, maturity_s=3600)
    middle = (fresher.train_end + fresher.as_of - 3_600_000) // 2
    overlapping = run_retrain(
        settings,
        store,
        publish=False,
        maturity_s=3600,
        # Signed again: the signature covers train_end too.
        champion_source=lambda: resign(champion, b"k", train_end=middle),
    )
    assert 0 < overlapping.decision.compared_rows < overlapping.rows["rows_holdout"]


def test_unverifiable_champion_is_replaced(store, tmp_path):
    settings = Settings(state_dir=tmp_path, label_maturity_days=1.0, model_signing_key="k")
    first = run_retrain(settings, store, publish=False)
    forged = {**_release_of(store, settings, first.version), "signature": "0" * 64}
    result = run_retrain(settings, store, publish=False, champion_source=lambda: forged)
    assert result.decision.promote and "bad signature" in result.decision.reason


def test_junk_under_the_champion_key_does_not_open_the_gate(store, tmp_path):
    # S14: the topic's champion is junk (undecodable, or forged): the registry's champion, as
    # stored in model_artifacts, is the benchmark instead, so the gate still applies.
    from streamlearn.domain import lifecycle
    from streamlearn.schemas import SchemaError

    settings = Settings(state_dir=tmp_path, label_maturity_days=1.0, model_signing_key="k")
    first = run_retrain(settings, store, publish=False)
    registry.apply(store, lifecycle.promote(first.version, replacing=None, reason="first"))
    forged = {**_release_of(store, settings, first.version), "metrics": {"holdout_ap": 0.0}}

    def undecodable() -> dict:
        raise SchemaError("not Avro single-object encoding")

    for source in (undecodable, lambda: forged):
        strict = run_retrain(
            settings, store, publish=False, gate=GateConfig(margin=1.0), champion_source=source
        )
        d = strict.decision
        assert not d.promote and strict.status == "rejected", d.reason
        assert d.champion_version == first.version and d.compared_rows > 0


def _release_of(store: Store, settings: Settings, version: str) -> dict:
    """Rebuild the release of a registered version (retraining is deterministic)."""
    from streamlearn.batch_retrain.training_set import build_training_set

    entry = registry.get(store, version)
    ts = build_training_set(store, maturity_days=settings.label_maturity_days)
    # The registered candidate: the chosen rounds boosted again on train and validation.
    booster = refit_on_every_row(ts, train(ts), holdout=False).booster
    record = build_release(
        booster,
        version=version,
        feature_names=ts.feature_names,
        train_start=ts.train_start,
        train_end=ts.train_end,
        metrics={},
        signing_key=b"k",
    )
    assert record["sha256"] == entry.sha256
    return record


def test_retraining_the_same_model_gets_a_new_version(store, tmp_path):
    settings = Settings(state_dir=tmp_path, label_maturity_days=1.0)
    first = run_retrain(settings, store, publish=False)
    again = run_retrain(settings, store, publish=False)
    assert again.version != first.version and again.version > first.version
    assert again.version[-6:] == first.version[-6:]  # same model bytes, same sha prefix
    assert len(registry.list_models(store)) == 2
