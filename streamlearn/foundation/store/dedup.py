"""Deduplication tokens: a retried batch insert is skipped by ClickHouse, a new one is not."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def batch_token(kind: str, partition: int, first: int, last: int, content: Iterable[str]) -> str:
    """A deduplication token: partition + offset range + a hash of what the batch holds."""
    h = hashlib.blake2b(digest_size=12)
    for item in content:
        h.update(item.encode())
        h.update(b"\0")
    return f"{kind}:{partition}:{first}-{last}:{h.hexdigest()}"
