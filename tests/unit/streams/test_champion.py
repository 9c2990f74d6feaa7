"""The champion slot: verified releases swap in, bad ones are refused and the old one kept."""

from __future__ import annotations

import threading
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.domain.release import as_rollback, build_release, resign
from streamlearn.foundation.errors import ModelRejected
from streamlearn.streams.champion import REJECTED_KEPT, Champion

KEY = b"deployment-key"
PARAMS = {"objective": "binary", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5}


def train(names: list[str], seed: int, rounds: int = 8) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, len(names)))
    y = (X[:, 0] - 0.5 * X[:, -1] + 0.3 * rng.normal(size=400) > 0).astype(int)
    return lgb.train(PARAMS, lgb.Dataset(X, y, feature_name=names), num_boost_round=rounds)


def release(
    booster: lgb.Booster, version: str, *, key: bytes | None = KEY, role: str = "champion"
) -> dict[str, Any]:
    return build_release(
        booster,
        version=version,
        feature_names=booster.feature_name(),
        train_start=1_700_000_000_000,
        train_end=1_700_100_000_000,
        metrics={"holdout_auc": 0.8},
        signing_key=key,
        role=role,
    )


@pytest.fixture(scope="module")
def full() -> lgb.Booster:
    return train(list(FEATURE_NAMES), seed=1)


@pytest.fixture(scope="module")
def other() -> lgb.Booster:
    return train(list(FEATURE_NAMES), seed=2)


def matrix(n: int = 64, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, len(FEATURE_NAMES)))


def test_starts_empty() -> None:
    champ = Champion(KEY)
    assert champ.slots() == (None, None) and champ.swaps == 0 and champ.rejected == []


def test_valid_release_swaps_current(full: lgb.Booster, other: lgb.Booster) -> None:
    champ = Champion(KEY)
    slot = champ.offer(release(full, "v1"))
    assert champ.current is slot and slot.version == "v1" and slot.role == "champion"
    assert champ.swaps == 1
    X = matrix()
    assert np.array_equal(slot.score(X), full.predict(X))
    second = champ.offer(release(other, "v2"))
    assert champ.slots() == (second, None) and champ.swaps == 2
    assert np.array_equal(second.score(X), other.predict(X))


def test_offering_the_serving_version_again_is_a_no_op(full: lgb.Booster) -> None:
    champ = Champion(KEY)
    first = champ.offer(release(full, "v1"))
    assert champ.offer(release(full, "v1")) is first and champ.swaps == 1


def test_tampered_bytes_are_rejected_and_the_old_model_kept(
    full: lgb.Booster, other: lgb.Booster
) -> None:
    champ = Champion(KEY)
    good = champ.offer(release(full, "v1"))
    bad = release(other, "v2")
    bad["model"] = bad["model"].replace(b"leaf_value=", b"leaf_value=9", 1)
    with pytest.raises(ModelRejected, match="sha256 mismatch"):
        champ.offer(bad)
    assert champ.current is good and champ.swaps == 1
    assert champ.rejected == [("v2", champ.rejected[0][1])]
    assert "v2" in champ.rejected[0][1]


def test_wrong_hmac_is_rejected(full: lgb.Booster) -> None:
    champ = Champion(KEY)
    with pytest.raises(ModelRejected, match="bad signature"):
        champ.offer(release(full, "v1", key=b"another-key"))
    with pytest.raises(ModelRejected, match="unsigned"):
        champ.offer(release(full, "v1", key=None))
    assert champ.current is None and len(champ.rejected) == 2


def test_without_a_key_unsigned_releases_are_served(full: lgb.Booster) -> None:
    champ = Champion(None)
    assert champ.offer(release(full, "v1", key=None)).version == "v1"


def test_unknown_feature_name_is_rejected() -> None:
    booster = train(["amount", "card_count_1h", "feature_from_the_future"], seed=4)
    champ = Champion(KEY)
    with pytest.raises(ModelRejected, match="feature_from_the_future"):
        champ.offer(release(booster, "v9"))
    assert champ.current is None and champ.rejected[0][0] == "v9"


def test_unloadable_model_text_is_rejected(full: lgb.Booster) -> None:
    import hashlib

    champ = Champion(KEY)
    text = b"this is not a LightGBM model"
    record = resign(release(full, "v1"), KEY, model=text, sha256=hashlib.sha256(text).hexdigest())
    with pytest.raises(ModelRejected, match="cannot load"):
        champ.offer(record)
    assert champ.current is None


def test_shadow_is_kept_apart_and_cleared_on_promotion(
    full: lgb.Booster, other: lgb.Booster
) -> None:
    champ = Champion(KEY)
    serving = champ.offer(release(full, "v1"))
    shadow = champ.offer(release(other, "v2", role="shadow"))
    assert champ.slots() == (serving, shadow) and shadow.role == "shadow"
    assert champ.swaps == 1
    X = matrix()
    assert not np.array_equal(serving.score(X), shadow.score(X))
    promoted = champ.offer(release(other, "v2"))
    assert champ.slots() == (promoted, None) and champ.swaps == 2


def test_shadow_before_any_champion(other: lgb.Booster) -> None:
    champ = Champion(KEY)
    shadow = champ.offer(release(other, "v2", role="shadow"))
    assert champ.slots() == (None, shadow)


def test_slot_reads_the_columns_in_the_release_order() -> None:
    names = ["merchant_fraud_rate", "amount", "card_count_1h", "hour_of_day"]
    booster = train(names, seed=5, rounds=15)
    champ = Champion(KEY)
    slot = champ.offer(release(booster, "v-perm"))
    idx = [FEATURE_NAMES.index(n) for n in names]
    assert slot.columns.tolist() == idx
    X = matrix(200, seed=6)
    expected = booster.predict(X[:, idx])
    assert np.array_equal(slot.score(X), expected)
    assert not np.allclose(slot.score(X), booster.predict(X[:, sorted(idx)]))


def test_custom_feature_list() -> None:
    names = ["b", "a"]
    booster = train(names, seed=7)
    champ = Champion(None, features=["a", "b", "c"])
    slot = champ.offer(release(booster, "v1", key=None))
    X = np.random.default_rng(8).normal(size=(30, 3))
    assert slot.columns.tolist() == [1, 0]
    assert np.array_equal(slot.score(X), booster.predict(X[:, [1, 0]]))


def test_readers_always_see_a_whole_slot(full: lgb.Booster, other: lgb.Booster) -> None:
    champ = Champion(KEY)
    v1, v2 = release(full, "v1"), release(other, "v2")
    champ.offer(v1)
    seen: list[str | None] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            current, _ = champ.slots()
            seen.append(current.version if current is not None else None)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(20):
        # Back and forth, each release issued after the last: v2 again (retrained), then v1
        # as a signed rollback.
        at = v2["created_at"] + i
        again = resign(v2, KEY, created_at=at)
        champ.offer(again if i % 2 else as_rollback(v1, replacing="v2", signing_key=KEY, at_ms=at))
    stop.set()
    t.join()
    assert set(seen) <= {"v1", "v2"} and champ.swaps == 20


def test_a_withdrawn_shadow_stops_scoring_and_the_champion_stays(
    full: lgb.Booster, other: lgb.Booster
) -> None:
    champ = Champion(KEY)
    serving = champ.offer(release(full, "v1"))
    champ.offer(release(other, "v2", role="shadow"))
    assert champ.clear_shadow() == "v2"
    assert champ.slots() == (serving, None)
    assert champ.clear_shadow() is None


def test_the_serving_champion_is_not_also_shadowed(full: lgb.Booster) -> None:
    champ = Champion(KEY)
    serving = champ.offer(release(full, "v1"))
    champ.offer(release(full, "v1", role="shadow"))
    assert champ.slots() == (serving, None)


# --- S14: a replayed, forged or junk release never takes the champion slot back -------------


def test_a_replayed_older_release_is_refused(full: lgb.Booster, other: lgb.Booster) -> None:
    champ = Champion(KEY)
    old, new = release(full, "v1"), release(other, "v2")
    champ.offer(old)
    serving = champ.offer(new)
    with pytest.raises(ModelRejected, match="older than the served v2"):
        champ.offer(old)  # genuine and signed, but older: a replay
    assert champ.current is serving and champ.swaps == 2


def test_a_signed_rollback_serves_an_older_model_and_outranks_replays(
    full: lgb.Booster, other: lgb.Booster
) -> None:
    champ = Champion(KEY)
    v1, v2 = release(full, "v1"), release(other, "v2")
    champ.offer(v1)
    champ.offer(v2)
    back = as_rollback(v1, replacing="v2", signing_key=KEY, at_ms=v2["created_at"] + 1000)
    assert champ.offer(back).version == "v1"
    with pytest.raises(ModelRejected, match="older"):
        champ.offer(v2)  # replaying the release rolled back from
    forged = {**back, "rollback": {"of": "v2", "at": back["rollback"]["at"] + 1}}
    with pytest.raises(ModelRejected, match="bad signature"):
        champ.offer(forged)  # a rollback mark without the key
    assert champ.current is not None and champ.current.version == "v1"


def test_an_unsigned_rollback_is_refused_when_the_deployment_signs(
    full: lgb.Booster, other: lgb.Booster
) -> None:
    champ = Champion(KEY)
    champ.offer(release(other, "v2"))
    unsigned = as_rollback(release(full, "v1"), replacing="v2", signing_key=None)
    with pytest.raises(ModelRejected, match="unsigned"):
        champ.offer(unsigned)
    assert champ.current is not None and champ.current.version == "v2"


def test_a_shadow_forged_into_a_champion_is_refused(full: lgb.Booster, other: lgb.Booster) -> None:
    champ = Champion(KEY)
    serving = champ.offer(release(full, "v1"))
    shadow = release(other, "v2", role="shadow")
    champ.offer(shadow)
    with pytest.raises(ModelRejected, match="bad signature"):
        champ.offer({**shadow, "role": "champion"})  # promoted by someone without the key
    assert champ.slots()[0] is serving


def test_refusals_kept_are_bounded(full: lgb.Booster) -> None:
    champ = Champion(KEY)
    junk = release(full, "v1", key=b"not-the-deployment-key")
    for i in range(REJECTED_KEPT + 50):
        with pytest.raises(ModelRejected):
            champ.offer({**junk, "version": f"junk-{i}"})
    assert len(champ.rejected) == REJECTED_KEPT and champ.refused == REJECTED_KEPT + 50
    assert champ.rejected[-1][0] == f"junk-{REJECTED_KEPT + 49}"
