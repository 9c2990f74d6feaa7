"""ModelRelease records: build, sign and verify one, order releases, load the booster.

The sha256 catches corruption. The HMAC-SHA256 signature covers the whole release (every
field but the signature, canonically encoded), so whoever can write to the models topic but
lacks the deployment's key can neither bend a release's metadata (version, role, metrics,
reference bins, ...) nor turn a shadow into a champion. Replays of genuine releases are
caught by their order (`serving_order`): workers refuse a champion older than theirs unless
it is a signed rollback.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

import lightgbm as lgb

from streamlearn.domain.lifecycle import ModelStatus
from streamlearn.foundation.clock import now_ms
from streamlearn.foundation.errors import ModelRejected
from streamlearn.learners.drift import ReferenceBins, bins_to_record

log = logging.getLogger(__name__)

MODEL_FORMAT = "lightgbm-text"
# What the signature is computed over starts with this tag, so a signature of the model bytes
# alone (releases from before whole-release signing) can never pass for one.
SIGNED_FORM = b"streamlearn.ModelRelease signed form 2\n"
SHADOW_SUFFIX = ".shadow"


class ReleaseRole(StrEnum):
    """The slot a release is published for: served, or scored beside the champion."""

    CHAMPION = "champion"
    SHADOW = "shadow"


ROLES = tuple(ReleaseRole)

# The registry's champions with the releases they were last served as, newest first
# (streamlearn.models and streamlearn.model_artifacts): what a worker or the retrain job falls
# back to when the models topic holds no valid champion.
REGISTRY_CHAMPIONS_SQL = f"""
SELECT a.release
FROM streamlearn.model_artifacts AS a FINAL
INNER JOIN (
    SELECT version, created_at FROM streamlearn.models FINAL
    WHERE name = {{name:String}} AND status = '{ModelStatus.CHAMPION}'
) AS m ON m.version = a.version
ORDER BY m.created_at DESC, m.version DESC
LIMIT 5"""


def make_version(sha256_hex: str, at: dt.datetime | None = None) -> str:
    """Sortable and unique: UTC creation time plus 6 hex of the model's sha256."""
    at = at or dt.datetime.now(dt.UTC)
    return f"v{at.astimezone(dt.UTC):%Y%m%dT%H%M%S}-{sha256_hex[:6]}"


def signed_form(record: Mapping[str, Any]) -> bytes:
    """The canonical bytes a release's signature covers: every field but the signature.

    Sorted-key JSON; the model enters by its sha256; a null field is left out, so adding an
    optional field (null by default) to the schema keeps earlier signatures valid. A field
    the schema lacks (dropped when encoded) makes the decoded release fail: fail-safe.
    """
    form: dict[str, Any] = {}
    for name, value in record.items():
        if name == "signature" or value is None:
            continue
        if name == "model":
            value = hashlib.sha256(bytes(value)).hexdigest()
        elif name == "metrics":
            value = {k: float(v) for k, v in value.items()}
        elif name == "reference_bins":
            value = {
                k: {part: [float(x) for x in xs] for part, xs in b.items()}
                for k, b in value.items()
            }
        form[name] = value
    return SIGNED_FORM + json.dumps(form, sort_keys=True, separators=(",", ":")).encode()


def sign(record: Mapping[str, Any], signing_key: bytes) -> str:
    """Hex HMAC-SHA256 of the release's signed form."""
    return hmac.new(signing_key, signed_form(record), hashlib.sha256).hexdigest()


def resign(record: Mapping[str, Any], signing_key: bytes | None, **changes: Any) -> dict[str, Any]:
    """The release with `changes` applied and signed again (unsigned without a key).

    Verify a release before resigning it: resigning would launder a tampered one.
    """
    changed = {**record, **changes}
    changed["signature"] = sign(changed, signing_key) if signing_key else None
    return changed


def as_rollback(
    record: Mapping[str, Any],
    *,
    replacing: str,
    signing_key: bytes | None,
    at_ms: int | None = None,
) -> dict[str, Any]:
    """The release republished as champion over `replacing`, signed as a rollback."""
    at = at_ms if at_ms is not None else now_ms()
    return resign(
        record, signing_key, role=ReleaseRole.CHAMPION, rollback={"of": replacing, "at": at}
    )


def serving_order(record: Mapping[str, Any]) -> tuple[int, str]:
    """When the release was put in service (its rollback's time, else its creation), then its
    version: a worker serves a champion only if it orders after the one it serves."""
    rollback = record.get("rollback")
    at = rollback["at"] if rollback else record.get("created_at", 0)
    return int(at), str(record.get("version", ""))


def build_release(
    booster: lgb.Booster,
    *,
    version: str | None = None,
    feature_names: Sequence[str],
    train_start: int,
    train_end: int,
    metrics: Mapping[str, float],
    signing_key: bytes | None,
    role: str = ReleaseRole.CHAMPION,
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
    record = {
        "name": name,
        "version": version or make_version(digest, now),
        "created_at": created,
        "role": ReleaseRole(role),
        "model_format": MODEL_FORMAT,
        "model": model,
        "sha256": digest,
        "feature_names": list(feature_names),
        "train_start": int(train_start),
        "train_end": int(train_end),
        # Avro map values are doubles; NaN (an undefined metric) is kept as is.
        "metrics": {k: float(v) for k, v in metrics.items()},
        "reason": reason,
        "reference_bins": bins_to_record(reference_bins or {}),
        "rollback": None,
    }
    return resign(record, signing_key)


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
        _check_signature(record, bytes(model), signing_key, label)
    if record.get("role") not in ROLES:
        raise ModelRejected(f"{label}: unknown role {record.get('role')!r}")
    names = list(record.get("feature_names") or [])
    if not names:
        raise ModelRejected(f"{label}: no feature_names")
    known = set(known_features)
    unknown = [f for f in names if f not in known]
    if unknown:
        raise ModelRejected(f"{label}: needs features this worker cannot compute: {unknown}")


def _check_signature(
    record: Mapping[str, Any], model: bytes, signing_key: bytes, label: str
) -> None:
    signature = str(record.get("signature") or "")
    if not signature:
        raise ModelRejected(
            f"{label}: unsigned, but STREAMLEARN_MODEL_SIGNING_KEY requires a signature"
        )
    if hmac.compare_digest(sign(record, signing_key), signature):
        return
    legacy = hmac.new(signing_key, model, hashlib.sha256).hexdigest()
    if hmac.compare_digest(legacy, signature):
        raise ModelRejected(
            f"{label}: its signature covers the model bytes only (released before whole-release "
            "signing), so its metadata is unproven: retrain to release it again"
        )
    raise ModelRejected(
        f"{label}: bad signature (altered, or signed with another STREAMLEARN_MODEL_SIGNING_KEY)"
    )


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


def release_key(name: str, role: str = ReleaseRole.CHAMPION) -> bytes:
    """The models-topic key of a release: the name for a champion, name.shadow for a shadow."""
    return (name + SHADOW_SUFFIX if role == ReleaseRole.SHADOW else name).encode()


def pack_stored(encoded: bytes) -> str:
    """A release's Avro single-object bytes as streamlearn.model_artifacts keeps them: base64
    text, so they travel through the worker-proxied store's JSON."""
    return base64.b64encode(encoded).decode("ascii")


def unpack_stored(text: str | bytes) -> bytes:
    """The inverse of pack_stored; raises ValueError if the text is not base64."""
    return base64.b64decode(text, validate=True)


class RowReader(Protocol):
    """The one store call reading stored releases needs (the apps pass their store)."""

    def query_rows(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> tuple[Sequence[str], Sequence[Sequence[Any]]]: ...


def registry_champions(
    store: RowReader, decode: Callable[[bytes], dict[str, Any]], name: str = "fraud"
) -> list[dict[str, Any]]:
    """The registry's champions as last served, newest first, decoded with `decode` (the
    apps' ModelRelease serde); unverified: offer or verify them. One that cannot be decoded
    (decode raises ValueError, as SchemaError is) is logged and left out."""
    _, rows = store.query_rows(REGISTRY_CHAMPIONS_SQL, {"name": name})
    releases = []
    for text, *_ in rows:
        try:
            releases.append(decode(unpack_stored(text)))
        except ValueError as exc:
            log.error("a stored release of model %s cannot be decoded: %s", name, exc)
    return releases
