"""The model in service: verified releases swapped in atomically between micro-batches.

A champion release is served only if it orders after the one in service (domain/release.py
`serving_order`: a newer release, or a signed rollback issued later), so a replayed old
release cannot take the slot back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.domain.release import ReleaseRole, load_booster, serving_order, verify_release
from streamlearn.foundation.errors import ModelRejected

log = logging.getLogger(__name__)

# Refused releases kept for /status (newest last): a flood of junk must not grow memory.
REJECTED_KEPT = 100


@dataclass(frozen=True)
class ModelSlot:
    """One loaded booster and the columns of the worker's feature vector it reads."""

    version: str
    booster: Any
    columns: np.ndarray
    role: str
    record: dict[str, Any]

    def score(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(matrix[:, self.columns], num_threads=1))


class Champion:
    """Holds the champion (and an optional shadow); readers take a slot once per batch."""

    def __init__(self, signing_key: bytes | None, features: Sequence[str] = FEATURE_NAMES):
        self._signing_key = signing_key
        self._features = list(features)
        self._index = {name: i for i, name in enumerate(self._features)}
        self._lock = threading.Lock()
        self.current: ModelSlot | None = None
        self.shadow: ModelSlot | None = None
        # The serving order (domain/release.py) a champion must beat to replace the current.
        self._order: tuple[int, str] | None = None
        # (version, reason) of the last REJECTED_KEPT refusals; `refused` counts them all.
        self.rejected: list[tuple[str, str]] = []
        self.refused = 0
        self.swaps = 0

    def offer(self, record: dict[str, Any]) -> ModelSlot:
        """Verify a release and put it in service; raise ModelRejected and keep the old one."""
        try:
            verify_release(record, signing_key=self._signing_key, known_features=self._features)
            if record.get("role") != ReleaseRole.SHADOW:
                self._check_order(record)
            booster = load_booster(record)
        except ModelRejected as exc:
            self._refused(str(record.get("version")), str(exc))
            raise
        columns = np.array([self._index[f] for f in record["feature_names"]], dtype=np.intp)
        slot = ModelSlot(record["version"], booster, columns, record["role"], record)
        with self._lock:
            kept = self._swap(slot, serving_order(record))
        if kept is slot:
            log.info("model %s now serves as %s", slot.version, slot.role)
        return kept

    def _swap(self, slot: ModelSlot, order: tuple[int, str]) -> ModelSlot:
        """Put slot in its place (under the lock); returns the slot now serving its role."""
        current = self.current
        if slot.role == ReleaseRole.SHADOW:
            if current is not None and current.version == slot.version:
                return current  # already promoted: nothing to compare it with
            self.shadow = slot
            return slot
        if current is not None and current.version == slot.version:
            # The same model again (e.g. rolled back to what already serves): no swap, but
            # its later order is what a replay must now beat.
            self._order = max(self._order or order, order)
            return current
        self.current, self._order = slot, order
        if self.shadow is not None and self.shadow.version == slot.version:
            self.shadow = None
        self.swaps += 1
        return slot

    def _check_order(self, record: dict[str, Any]) -> None:
        current, served = self.current, self._order
        if current is None or served is None or current.version == record.get("version"):
            return
        if serving_order(record) <= served:
            raise ModelRejected(
                f"model {record.get('name', '?')} {record.get('version', '?')} rejected: "
                f"older than the served {current.version} and not a later signed rollback "
                "(a replayed release?)"
            )

    def _refused(self, version: str, reason: str) -> None:
        self.refused += 1
        self.rejected.append((version, reason))
        del self.rejected[:-REJECTED_KEPT]

    def clear_shadow(self) -> str | None:
        """Stop scoring with the shadow (it was rejected or withdrawn); returns its version."""
        with self._lock:
            gone, self.shadow = self.shadow, None
        if gone is not None:
            log.info("shadow model %s withdrawn", gone.version)
        return gone.version if gone is not None else None

    def slots(self) -> tuple[ModelSlot | None, ModelSlot | None]:
        """The (champion, shadow) pair to use for one whole batch."""
        with self._lock:
            return self.current, self.shadow
