"""ModelRelease records: build one from a booster, verify one before use, load its booster.

The sha256 catches corruption; the HMAC-SHA256 signature (over the model bytes, which also
hold the feature names) proves the release came from a holder of the deployment's key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb

from streamlearn.foundation.errors import ModelRejected
from streamlearn.learners.drift import ReferenceBins, bins_to_record

MODEL_FORMAT = "lightgbm-text"
ROLES = ("champion", "shadow")


def make_version(sha256_hex: str, at: dt.datetime | None = None) -> str:
    """Sortable and unique: UTC creation time plus 6 hex of the model's sha256."""
    at = at or dt.datetime.now(dt.UTC)
    return f"v{at.astimezone(dt.UTC):%Y%m%dT%H%M%S}-{sha256_hex[:6]}"


def sign(model: bytes, signing_key: bytes) -> str:
    """Hex HMAC-SHA256 of the model bytes."""
    return hmac.new(signing_key, model, hashlib.sha256).hexdigest()


def build_release(
    booster: lgb.Booster,
    *,
    version: str | None = None,
    feature_names: Sequence[str],
    train_start: int,
    train_end: int,
    metrics: Mapping[str, float],
    signing_key: bytes | None,
    role: str = "champion",
    reason: str = "",
    name: str = "fraud",
    created_at_ms: int | None = None,
    reference_bins: Mapping[str, ReferenceBins] | None = None,
) -> dict[str, Any]:
    """The ModelRelease record (schemas/model_release.avsc); version None derives one.

    reference_bins: each feature's quantile bins over the training rows, which the workers'
    data-drift monitor compares recent traffic with while this model is the champion.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    if list(booster.feature_name()) != list(feature_names):
        raise ValueError("the booster's feature names differ from feature_names")
    model = booster.model_to_string().encode()
    digest = hashlib.sha256(model).hexdigest()
    now = dt.datetime.now(dt.UTC)
    created = created_at_ms if created_at_ms is not None else int(now.timestamp() * 1000)
    return {
        "name": name,
        "version": version or make_version(digest, now),
        "created_at": created,
        "role": role,
        "model_format": MODEL_FORMAT,
        "model": model,
        "sha256": digest,
        "signature": sign(model, signing_key) if signing_key else None,
        "feature_names": list(feature_names),
        "train_start": int(train_start),
        "train_end": int(train_end),
        # Avro map values are doubles; NaN (an undefined metric) is kept as is.
        "metrics": {k: float(v) for k, v in metrics.items()},
        "reason": reason,
        "reference_bins": bins_to_record(reference_bins or {}),
    }


def verify_release(
    record: Mapping[str, Any], *, signing_key: bytes | None, known_features: Sequence[str]
) -> None:
    """Raise ModelRejected (one line) unless the release is intact, signed and servable."""
    label = f"model {record.get('name', '?')} {record.get('version', '?')} rejected"
    fmt = record.get("model_format")
    if fmt != MODEL_FORMAT:
        raise ModelRejected(f"{label}: unknown model_format {fmt!r} (expected {MODEL_FORMAT})")
    model = record.get("model")
    if not isinstance(model, bytes | bytearray) or not model:
        raise ModelRejected(f"{label}: no model bytes")
    digest = hashlib.sha256(model).hexdigest()
    if not hmac.compare_digest(digest, str(record.get("sha256", ""))):
        raise ModelRejected(f"{label}: sha256 mismatch (the model bytes were altered)")
    if signing_key:
        signature = record.get("signature")
        if not signature:
            raise ModelRejected(
                f"{label}: unsigned, but STREAMLEARN_MODEL_SIGNING_KEY requires a signature"
            )
        if not hmac.compare_digest(sign(bytes(model), signing_key), str(signature)):
            raise ModelRejected(
                f"{label}: bad signature (signed with another STREAMLEARN_MODEL_SIGNING_KEY?)"
            )
    names = list(record.get("feature_names") or [])
    if not names:
        raise ModelRejected(f"{label}: no feature_names")
    known = set(known_features)
    unknown = [f for f in names if f not in known]
    if unknown:
        raise ModelRejected(f"{label}: needs features this worker cannot compute: {unknown}")


def load_booster(record: Mapping[str, Any]) -> lgb.Booster:
    """The booster of a (verified) release; its feature names must match the record's."""
    label = f"model {record.get('name', '?')} {record.get('version', '?')} rejected"
    try:
        booster = lgb.Booster(model_str=bytes(record["model"]).decode())
    except (lgb.basic.LightGBMError, UnicodeDecodeError, KeyError) as exc:
        raise ModelRejected(f"{label}: cannot load the model text: {exc}") from exc
    if list(booster.feature_name()) != list(record.get("feature_names") or []):
        raise ModelRejected(f"{label}: the model's features differ from its feature_names")
    return booster


SHADOW_SUFFIX = ".shadow"


def release_key(name: str, role: str = "champion") -> bytes:
    """The models-topic key of a release: the name for a champion, name.shadow for a shadow."""
    return (name + SHADOW_SUFFIX if role == "shadow" else name).encode()
