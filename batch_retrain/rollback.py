"""Put a previous model back into service: republish its stored release as a signed rollback.

The release comes from streamlearn.model_artifacts (the compacted models topic may no longer
hold it) with the same version, model and metadata, marked as a rollback of the current
champion and signed again: workers serve it although it is older than their champion, and
a replay of the release it replaces stays refused. The registry follows: the current
champion is retired ("rolled back to X") and X is champion again.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.artifacts import load_release
from streamlearn.batch_retrain.serving import serve
from streamlearn.domain import lifecycle
from streamlearn.domain.lifecycle import ModelStatus
from streamlearn.foundation.errors import StreamlearnError
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
        if e.status == ModelStatus.RETIRED
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
    current = registry.current_champion(store, name)
    target = version or rollback_target(store, name)
    if registry.get(store, target) is None:
        raise StreamlearnError(
            f"model version {target} is not in the registry (`streamlearn models`)"
        )
    was = current.version if current else None
    moves = lifecycle.rollback(target, current=was)  # refuses the serving version itself
    record = load_release(store, target)
    if record is None:
        raise StreamlearnError(
            f"no stored release of {target} in streamlearn.model_artifacts (trained before "
            "releases were kept?): retrain instead"
        )
    serve(settings, store, record, moves, rolls_back=was or "none", what="roll back")
    return Rollback(was, target)
