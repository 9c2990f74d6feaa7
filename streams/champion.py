"""The model in service: verified releases swapped in atomically between micro-batches."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamlearn.domain.features import FEATURE_NAMES
from streamlearn.domain.release import load_booster, verify_release
from streamlearn.foundation.errors import ModelRejected

log = logging.getLogger(__name__)


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
        self.rejected: list[tuple[str, str]] = []
        self.swaps = 0

    def offer(self, record: dict[str, Any]) -> ModelSlot:
        """Verify a release and put it in service; raise ModelRejected and keep the old one."""
        try:
            verify_release(record, signing_key=self._signing_key, known_features=self._features)
            booster = load_booster(record)
        except ModelRejected as exc:
            self.rejected.append((str(record.get("version")), str(exc)))
            raise
        columns = np.array([self._index[f] for f in record["feature_names"]], dtype=np.intp)
        slot = ModelSlot(
            record["version"], booster, columns, record.get("role", "champion"), record
        )
        with self._lock:
            if slot.role == "shadow":
                if self.current is not None and self.current.version == slot.version:
                    return self.current  # already promoted: nothing to compare it with
                self.shadow = slot
            else:
                if self.current is not None and self.current.version == slot.version:
                    return self.current
                self.current = slot
                if self.shadow is not None and self.shadow.version == slot.version:
                    self.shadow = None
                self.swaps += 1
        log.info("model %s now serves as %s", slot.version, slot.role)
        return slot

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
