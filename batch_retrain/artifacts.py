"""Every release as it was published, kept in ClickHouse (streamlearn.model_artifacts).

The compacted models topic keeps only the latest release per model name; a rollback needs an
older one byte for byte (same model, sha256 and signature), so the retrain job stores each
release's Avro single-object encoding here, base64 so it travels through RemoteStore's JSON.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from streamlearn.batch_retrain.registry import from_ms
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore
from streamlearn.schemas import Serde

TABLE = "model_artifacts"
COLUMNS = ("version", "name", "created_at", "release")


def save_release(store: Store | RemoteStore, record: Mapping[str, Any]) -> None:
    """Keep the release (a ModelRelease record) under its version."""
    encoded = base64.b64encode(Serde("ModelRelease").encode(dict(record))).decode("ascii")
    row = [record["version"], record["name"], from_ms(int(record["created_at"])), encoded]
    store.insert(TABLE, [row], COLUMNS)


def load_release(store: Store | RemoteStore, version: str) -> dict[str, Any] | None:
    """The release stored under `version`, decoded, or None if it was never stored."""
    _, rows = store.query_rows(
        f"SELECT release FROM streamlearn.{TABLE} FINAL WHERE version = {{v:String}} LIMIT 1",
        {"v": version},
    )
    if not rows:
        return None
    return Serde("ModelRelease").decode(base64.b64decode(rows[0][0]))
