"""A worker starting later converges on the models topic's champion and shadow (catch-up)."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import pytest

from streamlearn.batch_retrain.publish import release_key
from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.schemas import Serde
from streamlearn.streams.champion import Champion
from streamlearn.streams.model_feed import ModelFeed
from tests.unit.test_champion import KEY, release, train

SERDE = Serde("ModelRelease")


@dataclass
class Msg:
    """The two things catch-up reads of a consumed message."""

    k: bytes
    v: bytes | None

    def key(self) -> bytes:
        return self.k

    def value(self) -> bytes | None:
        return self.v


@pytest.fixture(scope="module")
def boosters() -> dict[str, lgb.Booster]:
    return {v: train(list(FEATURE_NAMES), seed=i) for i, v in enumerate(("v1", "v2", "v3"))}


def msg(boosters: dict[str, lgb.Booster], version: str, role: str = "champion") -> Msg:
    record = release(boosters[version], version, role=role)
    return Msg(release_key("fraud", role), SERDE.encode(record))


def caught_up(backlog: list[Msg]) -> tuple[str | None, str | None]:
    feed = ModelFeed.__new__(ModelFeed)  # no Kafka: only the catch-up logic runs
    feed.champion, feed.serde = Champion(KEY), SERDE
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
