"""A worker starting later converges on the models topic's champion and shadow (catch-up);
junk or replays under the champion key never cost it its champion (S14)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pytest

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.artifacts import save_release
from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.domain.lifecycle import ModelStatus
from streamlearn.domain.release import as_rollback, release_key
from streamlearn.foundation.clock import utc
from streamlearn.foundation.dead_letters import DeadLetter
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.schemas import Serde
from streamlearn.streams.champion import Champion
from streamlearn.streams.model_feed import ModelFeed
from tests.unit.streams.test_champion import KEY, release, train

SERDE = Serde("ModelRelease")


@dataclass
class Msg:
    """What the feed reads of a consumed message."""

    k: bytes
    v: bytes | None

    def key(self) -> bytes:
        return self.k

    def value(self) -> bytes | None:
        return self.v

    def topic(self) -> str:
        return "models"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7


@dataclass
class Letters:
    """Stands in for the dead-letter writer (no broker in a unit test): keeps what it gets."""

    sent: list[DeadLetter] = field(default_factory=list)

    def send(self, letter: DeadLetter) -> None:
        self.sent.append(letter)

    def flush(self) -> None:
        pass


@pytest.fixture(scope="module")
def boosters() -> dict[str, lgb.Booster]:
    return {v: train(list(FEATURE_NAMES), seed=i) for i, v in enumerate(("v1", "v2", "v3"))}


def msg(boosters: dict[str, lgb.Booster], version: str, role: str = "champion") -> Msg:
    record = release(boosters[version], version, role=role)
    return Msg(release_key("fraud", role), SERDE.encode(record))


def feed_of(fallback: Callable[[], list[dict[str, Any]]] = list) -> ModelFeed:
    feed = ModelFeed.__new__(ModelFeed)  # no Kafka: only the feed's logic runs
    feed.champion, feed.serde, feed.fallback, feed.dlq = Champion(KEY), SERDE, fallback, Letters()
    return feed


def caught_up(
    backlog: list[Msg], fallback: Callable[[], list[dict[str, Any]]] = list
) -> tuple[str | None, str | None]:
    feed = feed_of(fallback)
    feed._catch_up(backlog)
    champion, shadow = feed.champion.slots()
    return (champion and champion.version, shadow and shadow.version)


def test_champion_and_shadow_live_under_their_own_keys(boosters) -> None:
    assert release_key("fraud") == b"fraud" and release_key("fraud", "shadow") == b"fraud.shadow"
    backlog = [msg(boosters, "v1"), msg(boosters, "v2", "shadow")]
    assert caught_up(backlog) == ("v1", "v2")
    # A rollback (another champion) leaves the shadow under comparison.
    assert caught_up([*backlog, msg(boosters, "v3")]) == ("v3", "v2")


def test_a_tombstone_on_the_shadow_key_withdraws_it(boosters) -> None:
    tombstone = Msg(release_key("fraud", "shadow"), None)
    backlog = [msg(boosters, "v1"), msg(boosters, "v2", "shadow"), tombstone]
    assert caught_up(backlog) == ("v1", None)


def test_a_promoted_shadow_serves_only_as_champion(boosters) -> None:
    backlog = [msg(boosters, "v1"), msg(boosters, "v2", "shadow"), msg(boosters, "v2")]
    assert caught_up(backlog) == ("v2", None)


JUNK = Msg(b"fraud", b"\xc3\x01 not a release at all")


def test_a_replayed_release_after_a_rollback_does_not_serve_at_start(boosters) -> None:
    v1 = release(boosters["v1"], "v1")
    v2 = release(boosters["v2"], "v2")
    back = as_rollback(v1, replacing="v2", signing_key=KEY, at_ms=v2["created_at"] + 1000)
    on_topic = [Msg(b"fraud", SERDE.encode(r)) for r in (v1, v2, back, v2)]  # v2 replayed last
    assert caught_up(on_topic) == ("v1", None)


def test_junk_under_the_champion_key_leaves_the_served_champion(boosters) -> None:
    feed = feed_of()
    feed._catch_up([msg(boosters, "v1")])
    forged = {**release(boosters["v2"], "v2"), "metrics": {"holdout_ap": 0.99}}
    for junk in (JUNK, Msg(b"fraud", None), Msg(b"fraud", SERDE.encode(forged))):
        feed._on_message(junk)
    current, _ = feed.champion.slots()
    assert current is not None and current.version == "v1"
    letters = feed.dlq.sent
    assert [d.stage for d in letters] == ["decode", "decode", "model"]
    assert "bad signature" in letters[2].error


@pytest.fixture
def store(tmp_path: Path):
    s = Store(f"chdb://{tmp_path}/ch")
    s.migrate()
    yield s
    s.close()


def registered(store: Store, record: dict[str, Any], status: ModelStatus) -> None:
    at = utc(record["created_at"])
    registry.register(
        store,
        registry.ModelEntry(
            version=record["version"],
            name="fraud",
            created_at=at,
            status=status,
            train_start=at,
            train_end=at,
            rows_train=1,
            rows_valid=1,
            feature_names=record["feature_names"],
            sha256=record["sha256"],
        ),
    )
    save_release(store, record)


def test_a_worker_finding_only_junk_falls_back_to_the_registry_champion(
    boosters, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # The registry's champion v2 (stored in model_artifacts); v1 retired. Compaction left only
    # junk and a tampered release under the champion key.
    registered(store, release(boosters["v1"], "v1"), ModelStatus.RETIRED)
    registered(store, release(boosters["v2"], "v2"), ModelStatus.CHAMPION)
    tampered = {**release(boosters["v3"], "v3"), "version": "v9"}
    backlog = [JUNK, Msg(b"fraud", SERDE.encode(tampered))]
    settings = Settings(kafka_bootstrap="127.0.0.1:9", topic_prefix="unit-")
    feed = ModelFeed(settings, Champion(KEY), Letters(), store)
    try:
        with caplog.at_level(logging.ERROR, logger="streamlearn.streams.model_feed"):
            feed._catch_up(backlog)
    finally:
        feed.follower.consumer.close()
    current, _ = feed.champion.slots()
    assert current is not None and current.version == "v2"
    loud = [r.getMessage() for r in caplog.records if "NO VALID CHAMPION" in r.getMessage()]
    assert len(loud) == 1 and "serving v2" in loud[0] and "1 refused" in loud[0]


def test_without_any_valid_champion_the_worker_says_so(boosters, caplog) -> None:
    bad = {**release(boosters["v1"], "v1"), "signature": "0" * 64}
    with caplog.at_level(logging.ERROR, logger="streamlearn.streams.model_feed"):
        served = caught_up([JUNK, Msg(b"fraud", SERDE.encode(bad))], fallback=lambda: [bad])
    assert served == (None, None)
    assert any("nor in the registry" in r.getMessage() for r in caplog.records)
