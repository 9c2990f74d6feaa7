"""Put a previous model back into service: republish its stored release as champion.

The release comes from streamlearn.model_artifacts (the compacted models topic may no longer
hold it), byte for byte: same version, model, sha256 and signature, so every worker verifies
and swaps it in exactly as when it was first published. The registry follows: the current
champion is retired ("rolled back to X") and X is champion again.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.artifacts import load_release
from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.domain.release import verify_release
from streamlearn.foundation.errors import ModelRejected, StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore


@dataclass(frozen=True)
class Rollback:
    """What a rollback did: the version served before (None if none) and the one now."""

    previous: str | None
    version: str


def rollback_target(store: Store | RemoteStore, name: str = "fraud") -> str:
    """The newest retired model created before the current champion (a former champion)."""
    current = registry.current_champion(store, name)
    retired = [
        e
        for e in registry.entries(store, name=name)
        if e.status == "retired"
        and (
            current is None or (e.created_at < current.created_at and e.version != current.version)
        )
    ]
    if not retired:
        serving = f" than {current.version}" if current else ""
        raise StreamlearnError(
            f"no retired model older{serving} to roll back to: name a version "
            "(`streamlearn models` lists them)"
        )
    return retired[0].version


def rollback(
    settings: Settings,
    store: Store | RemoteStore,
    version: str | None = None,
    *,
    name: str = "fraud",
) -> Rollback:
    """Republish `version` (default: rollback_target) as champion and update the registry."""
    from streamlearn.batch_retrain.publish import publish_release

    current = registry.current_champion(store, name)
    target = version or rollback_target(store, name)
    entry = registry.get(store, target)
    if entry is None:
        raise StreamlearnError(
            f"model version {target} is not in the registry (`streamlearn models`)"
        )
    if current is not None and current.version == target:
        raise StreamlearnError(f"{target} is already the champion")
    record = load_release(store, target)
    if record is None:
        raise StreamlearnError(
            f"no stored release of {target} in streamlearn.model_artifacts (trained before "
            "releases were kept?): retrain instead"
        )
    key = settings.model_signing_key
    try:
        # Workers would refuse it: publishing it would only be dead-lettered.
        verify_release(
            record,
            signing_key=key.get_secret_value().encode() if key else None,
            known_features=FEATURE_NAMES,
        )
    except ModelRejected as exc:
        raise StreamlearnError(f"cannot roll back: {exc}") from exc
    publish_release(settings, {**record, "role": "champion"})
    if current is not None:
        registry.set_status(store, current.version, "retired", f"rolled back to {target}")
    was = current.version if current else "none"
    registry.set_status(store, target, "champion", f"rolled back from {was}")
    return Rollback(current.version if current else None, target)
