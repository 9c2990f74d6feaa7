"""Rollback against the real broker: a retired champion's stored release is served again, and
a worker refuses replays and junk under the champion key, falling back to the registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.artifacts import load_release
from streamlearn.batch_retrain.gate import GateConfig
from streamlearn.batch_retrain.pipeline import run_retrain
from streamlearn.batch_retrain.publish import fetch_release, publish_release
from streamlearn.batch_retrain.rollback import rollback, rollback_target
from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.domain.release import verify_release
from streamlearn.foundation.errors import StreamlearnError
from streamlearn.foundation.kafka import ensure_topics
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.tools.processes import WorkerProcess
from tests.conftest import free_port
from tests.integration.kafka_helpers import produce
from tests.unit.batch_retrain.test_train import T0, fill_store

ANY_CHALLENGER = GateConfig(margin=-1.0, tolerances={})


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.store_url)
    s.migrate()
    fill_store(s)
    yield s
    s.close()


def test_rollback_republishes_the_previous_champion(settings: Settings, store: Store) -> None:
    settings = settings.with_overrides(label_maturity_days=1.0, model_signing_key="k")
    with pytest.raises(StreamlearnError, match="no retired model"):
        rollback_target(store)

    as_of = int((T0 + dt.timedelta(days=9)).timestamp() * 1000)
    first = run_retrain(settings, store, as_of_ms=as_of, reason="schedule")
    assert first.status == "champion" and first.published
    second = run_retrain(settings, store, gate=ANY_CHALLENGER, reason="drift")
    assert second.status == "champion", second.decision.reason
    assert fetch_release(settings)["version"] == second.version
    assert registry.get(store, first.version).status == "retired"
    assert rollback_target(store) == first.version

    done = rollback(settings, store)
    assert (done.previous, done.version) == (second.version, first.version)
    served = fetch_release(settings)
    stored = load_release(store, first.version)
    assert served is not None and stored is not None
    assert served["version"] == first.version and served["role"] == "champion"
    assert served["model"] == stored["model"]
    assert (served["sha256"], served["signature"]) == (stored["sha256"], stored["signature"])
    # A signed rollback of the champion it replaced (S14): workers take it though older.
    assert served["rollback"]["of"] == second.version
    verify_release(served, signing_key=b"k", known_features=FEATURE_NAMES)
    assert registry.current_champion(store).version == first.version
    now_retired = registry.get(store, second.version)
    assert now_retired.status == "retired"
    assert now_retired.reason == f"rolled back to {first.version}"

    # Nothing older than the restored champion is retired: nothing to go back to by default,
    # but a named version still works (and is served again).
    with pytest.raises(StreamlearnError, match="no retired model older"):
        rollback(settings, store)
    again = rollback(settings, store, second.version)
    assert again.version == second.version
    assert fetch_release(settings)["version"] == second.version
    with pytest.raises(StreamlearnError, match="already the champion"):
        rollback(settings, store, second.version)


def test_rollback_command(settings: Settings, store: Store) -> None:
    from typer.testing import CliRunner

    from streamlearn.cli import app

    settings = settings.with_overrides(label_maturity_days=1.0)
    as_of = int((T0 + dt.timedelta(days=9)).timestamp() * 1000)
    first = run_retrain(settings, store, as_of_ms=as_of)
    second = run_retrain(settings, store, gate=ANY_CHALLENGER)
    store.close()  # chdb admits one process-wide handle at a time; the command opens its own
    args = ["--bootstrap", settings.kafka_bootstrap, "--store", settings.store_url]
    env = {"STREAMLEARN_TOPIC_PREFIX": settings.topic_prefix}
    result = CliRunner().invoke(app, ["models", "rollback", *args], env=env)
    assert result.exit_code == 0, result.output
    assert f"{first.version} is champion again (was {second.version})" in result.output
    assert fetch_release(settings)["version"] == first.version
    listing = CliRunner().invoke(app, ["models", "--store", settings.store_url], env=env)
    assert listing.exit_code == 0, listing.output
    reopened = Store(settings.store_url)
    try:
        assert registry.current_champion(reopened).version == first.version
        assert registry.get(reopened, second.version).reason == f"rolled back to {first.version}"
    finally:
        reopened.close()


def test_a_worker_refuses_replays_and_junk_and_falls_back_to_the_registry(
    settings: Settings, store: Store, tmp_path
) -> None:
    """S14: a replayed release, a forged one or junk under the champion key never makes a
    worker serve an old model or lose its champion."""
    settings = settings.with_overrides(label_maturity_days=1.0, model_signing_key="k")
    as_of = int((T0 + dt.timedelta(days=9)).timestamp() * 1000)
    first = run_retrain(settings, store, as_of_ms=as_of)
    second = run_retrain(settings, store, gate=ANY_CHALLENGER)
    assert (first.status, second.status) == ("champion", "champion")
    replayed = fetch_release(settings)
    rollback(settings, store)  # first serves again, as a signed rollback
    store.close()  # chdb: the worker opens the store itself

    models = settings.topic("models")
    # On the topic after the rollback: second's release replayed, a forged one, junk.
    publish_release(settings, replayed)
    forged = {**replayed, "version": "v99999999T999999-forged", "created_at": 2**41}
    publish_release(settings, forged)
    produce(settings, models, [(b"fraud", b"junk under the champion key")])
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        assert worker.status()["model_version"] == first.version
    finally:
        worker.stop(timeout=30)

    # Only junk under the champion key (as after compaction): the registry's champion serves.
    only_junk = settings.with_overrides(
        topic_prefix=f"{settings.topic_prefix}junk-", web_port=free_port()
    )
    ensure_topics(only_junk)
    produce(only_junk, only_junk.topic("models"), [(b"fraud", b"junk"), (b"fraud", None)])
    log = tmp_path / "fallback.log"
    worker = WorkerProcess(only_junk, log).start()
    try:
        assert worker.status()["model_version"] == first.version
    finally:
        worker.stop(timeout=30)
    assert "NO VALID CHAMPION on the models topic" in log.read_text()
    assert f"serving {first.version}, the registry's champion" in log.read_text()
