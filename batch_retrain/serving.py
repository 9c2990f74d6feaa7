"""Putting a release in service, the one way: verify, sign, publish, keep, record.

The retrain job, the shadow's live comparison and `models rollback` all serve a model through
`serve`: the release is verified as a worker would (a release workers refuse is not
published), signed again with what changed (its role, a rollback mark), published on the
models topic, kept in streamlearn.model_artifacts when it serves as champion, and the
registry makes the lifecycle transition (streamlearn.domain.lifecycle).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamlearn.batch_retrain import registry
from streamlearn.batch_retrain.artifacts import save_release
from streamlearn.batch_retrain.publish import publish_release, withdraw_shadow
from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.domain.lifecycle import Transition
from streamlearn.domain.release import ReleaseRole, as_rollback, resign, verify_release
from streamlearn.foundation.errors import ModelRejected, StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore


def signing_key(settings: Settings) -> bytes | None:
    """STREAMLEARN_MODEL_SIGNING_KEY as bytes, or None when the deployment does not sign."""
    key = settings.model_signing_key
    return key.get_secret_value().encode() if key else None


def serve(
    settings: Settings,
    store: Store | RemoteStore,
    release: Mapping[str, Any],
    transition: Transition,
    *,
    role: ReleaseRole = ReleaseRole.CHAMPION,
    rolls_back: str | None = None,
    clear_shadow: bool = False,
    what: str = "serve it",
    recorded: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish `release` as `role` (marked as a rollback of `rolls_back` if given; cleared
    from the shadow key if clear_shadow), then apply the transition, the `recorded` fields
    (the gate's decision, ...) written on its subject's row. Returns the release published.

    Raises StreamlearnError naming `what` if the workers would refuse the release,
    BrokerUnavailable if it cannot be published, LifecycleError if the move is not allowed.
    """
    key = signing_key(settings)
    try:
        # Checked before it is signed again: signing would launder a tampered stored release.
        verify_release(release, signing_key=key, known_features=FEATURE_NAMES)
    except ModelRejected as exc:
        raise StreamlearnError(f"cannot {what}: {exc}") from exc
    if rolls_back is not None:
        published = as_rollback(release, replacing=rolls_back, signing_key=key)
    elif release.get("role") != role:
        published = resign(release, key, role=role)
    else:
        published = dict(release)
    publish_release(settings, published)
    if rolls_back is not None:
        save_release(store, published)  # what workers now serve: their fallback, if need be
    if clear_shadow:
        withdraw_shadow(settings, str(release["name"]))
    registry.apply(store, transition, **(recorded or {}))
    return published


def withdraw(
    settings: Settings,
    store: Store | RemoteStore,
    transition: Transition,
    *,
    name: str,
    recorded: Mapping[str, Any] | None = None,
) -> None:
    """Clear the shadow slot on every worker (a tombstone), then apply the transition."""
    withdraw_shadow(settings, name)
    registry.apply(store, transition, **(recorded or {}))
