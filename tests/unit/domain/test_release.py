"""A ModelRelease verifies only when intact, signed with the deployment key and servable."""

from __future__ import annotations

import datetime as dt
import json
import re

import lightgbm as lgb
import numpy as np
import pytest

from streamlearn.domain.release import (
    as_rollback,
    build_release,
    load_booster,
    make_version,
    pack_stored,
    resign,
    serving_order,
    signed_form,
    unpack_stored,
    verify_release,
)
from streamlearn.foundation.errors import ModelRejected
from streamlearn.learners.drift import bins_from_record, bins_to_record, reference_bins
from streamlearn.schemas import Serde

FEATURES = ["amount", "card_count_1h", "merchant_fraud_rate"]
KEY = b"test-signing-key"


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=500) > 0.5).astype(int)
    data = lgb.Dataset(X, y, feature_name=FEATURES)
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5}
    return lgb.train(params, data, num_boost_round=10)


def release(booster: lgb.Booster, key: bytes | None = KEY, **overrides) -> dict:
    record = build_release(
        booster,
        version="v20260301T000000-abcdef",
        feature_names=FEATURES,
        train_start=1_700_000_000_000,
        train_end=1_700_100_000_000,
        metrics={"holdout_ap": 0.5},
        signing_key=key,
        reason="test",
    )
    return {**record, **overrides}


def test_good_release_survives_avro_and_predicts_identically(booster):
    serde = Serde("ModelRelease")
    record = serde.decode(serde.encode(release(booster)))
    verify_release(record, signing_key=KEY, known_features=[*FEATURES, "other"])
    loaded = load_booster(record)
    X = np.random.default_rng(2).normal(size=(200, 3))
    assert np.array_equal(loaded.predict(X), booster.predict(X))
    assert record["role"] == "champion" and record["model_format"] == "lightgbm-text"


def test_tampered_bytes_are_rejected(booster):
    record = release(booster)
    model = record["model"].replace(b"leaf_value=", b"leaf_value=1", 1)
    with pytest.raises(ModelRejected, match="sha256 mismatch"):
        verify_release({**record, "model": model}, signing_key=KEY, known_features=FEATURES)


def test_tampered_bytes_with_recomputed_sha_fail_the_signature(booster):
    import hashlib

    record = release(booster)
    model = record["model"].replace(b"leaf_value=", b"leaf_value=1", 1)
    forged = {**record, "model": model, "sha256": hashlib.sha256(model).hexdigest()}
    with pytest.raises(ModelRejected, match="bad signature"):
        verify_release(forged, signing_key=KEY, known_features=FEATURES)


def test_wrong_key_and_missing_signature_are_rejected(booster):
    with pytest.raises(ModelRejected, match="bad signature"):
        verify_release(release(booster, key=b"other"), signing_key=KEY, known_features=FEATURES)
    with pytest.raises(ModelRejected, match="unsigned"):
        verify_release(release(booster, key=None), signing_key=KEY, known_features=FEATURES)
    # Without a configured key an unsigned release is accepted (sha256 still checked).
    verify_release(release(booster, key=None), signing_key=None, known_features=FEATURES)


def test_unknown_feature_and_format_are_rejected(booster):
    with pytest.raises(ModelRejected, match="merchant_fraud_rate"):
        verify_release(release(booster), signing_key=KEY, known_features=FEATURES[:2])
    with pytest.raises(ModelRejected, match="model_format"):
        verify_release(
            release(booster, model_format="onnx"), signing_key=KEY, known_features=FEATURES
        )


def test_load_booster_checks_feature_names(booster):
    record = release(booster, feature_names=["a", "b", "c"])
    with pytest.raises(ModelRejected, match="feature"):
        load_booster(record)
    with pytest.raises(ModelRejected, match="cannot load"):
        load_booster({**record, "model": b"not a model"})


def test_rejection_is_one_line(booster):
    with pytest.raises(ModelRejected) as err:
        verify_release(release(booster), signing_key=b"x", known_features=FEATURES)
    assert "\n" not in str(err.value) and "v20260301T000000-abcdef" in str(err.value)


def test_version_is_sortable_and_names_the_sha():
    early = make_version("ab12cd" + "0" * 58, dt.datetime(2026, 11, 29, 4, 5, 12, tzinfo=dt.UTC))
    late = make_version("000000" + "0" * 58, dt.datetime(2026, 11, 29, 4, 5, 13, tzinfo=dt.UTC))
    assert early == "v20261129T040512-ab12cd"
    assert early < late
    derived = build_release(
        lgb.Booster(model_str=release_model_text()),
        feature_names=FEATURES,
        train_start=0,
        train_end=1,
        metrics={},
        signing_key=None,
    )["version"]
    assert re.fullmatch(r"v\d{8}T\d{6}-[0-9a-f]{6}", derived)


def release_model_text() -> str:
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(100, 3)), rng.integers(0, 2, 100)
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5}
    return lgb.train(params, lgb.Dataset(X, y, feature_name=FEATURES), 2).model_to_string()


def test_reference_bins_of_the_training_rows_travel_in_the_release(booster):
    X = np.random.default_rng(4).normal(size=(1000, 3))
    bins = reference_bins(X, FEATURES)
    serde = Serde("ModelRelease")
    record = serde.decode(
        serde.encode({**release(booster), "reference_bins": bins_to_record(bins)})
    )
    back = bins_from_record(record["reference_bins"])
    assert list(back) == FEATURES
    for name in FEATURES:
        assert np.array_equal(back[name].edges, bins[name].edges)
        assert np.array_equal(back[name].proportions, bins[name].proportions)
        assert len(back[name].edges) == 9  # 10 quantile bins of a continuous feature
    made = build_release(
        booster,
        feature_names=FEATURES,
        train_start=1,
        train_end=2,
        metrics={},
        signing_key=None,
        reference_bins=bins,
    )
    assert made["reference_bins"] == bins_to_record(bins)
    assert release(booster)["reference_bins"] == {}  # none given: an empty map


# --- S14: the signature covers the whole release ---------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"version": "v20990101T000000-abcdef"},
        {"created_at": 4_000_000_000_000},
        {"role": "shadow"},
        {"name": "other"},
        {"metrics": {"holdout_ap": 0.99}},
        {"reference_bins": {"amount": {"edges": [0.0], "proportions": [0.1, 0.9]}}},
        {"feature_names": ["card_count_1h", "amount", "merchant_fraud_rate"]},
        {"train_end": 1_800_000_000_000},
        {"reason": "forged"},
        {"rollback": {"of": "v0", "at": 4_000_000_000_000}},
    ],
    ids=lambda c: next(iter(c)),
)
def test_tampered_metadata_is_rejected(booster, change):
    record = release(booster)
    verify_release(record, signing_key=KEY, known_features=FEATURES)
    with pytest.raises(ModelRejected, match="bad signature"):
        verify_release({**record, **change}, signing_key=KEY, known_features=FEATURES)


def test_the_signature_survives_avro_and_resigning_keeps_it_valid(booster):
    serde = Serde("ModelRelease")
    record = serde.decode(serde.encode(release(booster)))
    verify_release(record, signing_key=KEY, known_features=FEATURES)
    shadow = resign(record, KEY, role="shadow")
    assert shadow["signature"] != record["signature"]
    verify_release(serde.decode(serde.encode(shadow)), signing_key=KEY, known_features=FEATURES)
    assert resign(record, None)["signature"] is None


def test_a_model_only_signature_is_refused_with_a_hint(booster):
    import hashlib
    import hmac

    record = release(booster)
    legacy = hmac.new(KEY, record["model"], hashlib.sha256).hexdigest()
    with pytest.raises(ModelRejected, match="model bytes only"):
        verify_release({**record, "signature": legacy}, signing_key=KEY, known_features=FEATURES)


def test_the_signed_form_is_canonical(booster):
    record = release(booster)
    reordered = {k: record[k] for k in reversed(record)}
    reordered["metrics"] = dict(reversed(list(record["metrics"].items())))
    assert signed_form(reordered) == signed_form(record)
    # An optional field added later (null by default) leaves earlier signatures valid.
    assert signed_form({**record, "rollback": None}) == signed_form(
        {k: v for k, v in record.items() if k != "rollback"}
    )
    assert record["model"] not in signed_form(record)  # the model enters by its digest


def test_serving_order_a_rollback_counts_from_its_own_time(booster):
    record = release(booster)
    assert serving_order(record) == (record["created_at"], record["version"])
    back = as_rollback(record, replacing="v2", signing_key=KEY, at_ms=record["created_at"] + 5)
    assert back["role"] == "champion" and back["rollback"] == {
        "of": "v2",
        "at": record["created_at"] + 5,
    }
    assert serving_order(back) > serving_order(record)
    verify_release(back, signing_key=KEY, known_features=FEATURES)


def test_releases_of_the_previous_schema_still_decode(booster):
    # schemas/history keeps the schema before `rollback` was added (releases on the topic).
    import copy
    import io

    import fastavro

    from streamlearn.schemas.serde import HISTORY_DIR, MAGIC, schema_fingerprint

    old = json.loads((HISTORY_DIR / "model_release.v2.avsc").read_text())
    assert "rollback" not in {f["name"] for f in old["fields"]}
    record = {k: v for k, v in release(booster).items() if k != "rollback"}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(copy.deepcopy(old)), record)
    decoded = Serde("ModelRelease").decode(MAGIC + schema_fingerprint(old) + body.getvalue())
    assert decoded["rollback"] is None
    verify_release(decoded, signing_key=KEY, known_features=FEATURES)


def test_stored_encoding_round_trips(booster):
    serde = Serde("ModelRelease")
    record = release(booster)
    text = pack_stored(serde.encode(record))
    assert text.isascii() and serde.decode(unpack_stored(text)) == record
    with pytest.raises(ValueError):
        unpack_stored("not base64!")


def test_a_field_the_schema_lacks_fails_after_encoding(booster):
    # Signed over every field given: one the schema drops when encoding breaks the signature
    # of the decoded release (fail-safe), rather than passing unsigned data along.
    serde = Serde("ModelRelease")
    extra = resign(release(booster), KEY, comment="not in the schema")
    with pytest.raises(ModelRejected, match="bad signature"):
        verify_release(serde.decode(serde.encode(extra)), signing_key=KEY, known_features=FEATURES)
