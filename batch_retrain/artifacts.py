"""Every release as it was last published, kept in ClickHouse (streamlearn.model_artifacts).

The compacted models topic keeps only the latest release per key; a rollback needs an older
one (same model, sha256 and metadata), and workers fall back to the registry's champion when
the topic holds no valid one. The retrain job stores each release when it registers it, and
again (replacing it) whenever it is put in service as champion, so the stored one is the
release workers last served, signed rollback included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple

from streamlearn.domain import release as release_format
from streamlearn.domain.release import pack_stored, unpack_stored
from streamlearn.foundation.clock import utc
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore
from streamlearn.schemas import Serde

TABLE = "model_artifacts"


class ArtifactRow(NamedTuple):
    """One row of streamlearn.model_artifacts."""

    version: str
    name: str
    created_at: dt.datetime
    release: str  # pack_stored: Avro single-object bytes, base64


COLUMNS = ArtifactRow._fields

__all__ = ["load_release", "registry_champions", "save_release"]

SERDE = Serde("ModelRelease")


def save_release(store: Store | RemoteStore, record: Mapping[str, Any]) -> None:
    """Keep the release (a ModelRelease record) under its version, replacing an earlier one."""
    row = ArtifactRow(
        record["version"],
        record["name"],
        utc(int(record["created_at"])),
        pack_stored(SERDE.encode(dict(record))),
    )
    store.insert(TABLE, [row], COLUMNS)


def load_release(store: Store | RemoteStore, version: str) -> dict[str, Any] | None:
    """The release stored under `version`, decoded, or None if it was never stored."""
    _, rows = store.query_rows(
        f"SELECT release FROM streamlearn.{TABLE} FINAL WHERE version = {{v:String}} LIMIT 1",
        {"v": version},
    )
    return SERDE.decode(unpack_stored(rows[0][0])) if rows else None


def registry_champions(store: Store | RemoteStore, name: str = "fraud") -> list[dict[str, Any]]:
    """The registry's champions as last served (streamlearn.models + model_artifacts), newest
    first, unverified."""
    return release_format.registry_champions(store, SERDE.decode, name)
