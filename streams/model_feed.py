"""Model hot-swap: every release on the models topic is verified, then served or refused.

Champions are keyed by model name, shadows by "<name>.shadow"; a tombstone (no value) on a
shadow key withdraws the shadow (rejected by the live comparison). A worker that finds no
valid champion on the topic at start (junk under the champion key compacted the last good
one away) serves the registry's champion, read from the store, and says so loudly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message

from streamlearn.domain.release import (
    SHADOW_SUFFIX,
    ReleaseRole,
    RowReader,
    registry_champions,
    serving_order,
)
from streamlearn.foundation.dead_letters import DeadLetter, DeadLetterWriter
from streamlearn.foundation.errors import ModelRejected, StreamlearnError
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import SchemaError, Serde
from streamlearn.streams.champion import Champion
from streamlearn.streams.follower import CompactedFollower

log = logging.getLogger(__name__)

Release = dict[str, Any]


class ModelFeed:
    """Loads the newest valid champion (and shadow) at start, then swaps on each release."""

    def __init__(
        self,
        settings: Settings,
        champion: Champion,
        dlq: DeadLetterWriter,
        store: RowReader | None = None,
        *,
        name: str = "fraud",
    ) -> None:
        self.champion = champion
        self.dlq = dlq
        self.serde = Serde("ModelRelease")
        self.fallback: Callable[[], list[Release]] = (
            (lambda: registry_champions(store, self.serde.decode, name))
            if store is not None
            else list
        )
        self.follower = CompactedFollower(
            settings, settings.topic("models"), self._catch_up, self._on_message
        )

    def start(self) -> None:
        self.follower.start()

    def stop(self) -> None:
        self.follower.stop()

    def _catch_up(self, backlog: list[Message]) -> None:
        champions, shadow = latest_releases(backlog, self.serde)
        served = serve_first(self.champion, sorted(champions, key=serving_order, reverse=True))
        if served is None:
            self._fall_back(tried=len(champions))
        if shadow is not None:
            try:
                self.champion.offer(shadow)
            except ModelRejected as exc:
                log.error("shadow model %s refused: %s", shadow.get("version"), exc)

    def _fall_back(self, tried: int) -> None:
        """No valid champion on the topic: serve the registry's, loudly, or say there is none."""
        try:
            stored = self.fallback()
        except (StreamlearnError, SchemaError, OSError) as exc:
            log.error(
                "NO VALID CHAMPION on the models topic (%d refused), and the registry cannot be "
                "read: %s",
                tried,
                exc,
            )
            return
        served = serve_first(self.champion, stored)
        if served is not None:
            log.error(
                "NO VALID CHAMPION on the models topic (%d refused): serving %s, the registry's "
                "champion (streamlearn.model_artifacts), until a valid release is published "
                "(retrain, or `streamlearn models rollback`)",
                tried,
                served,
            )
        elif tried or stored:
            log.error(
                "NO VALID CHAMPION on the models topic (%d refused) nor in the registry "
                "(%d refused): scoring with the online learners only (model_version none)",
                tried,
                len(stored),
            )

    def _on_message(self, msg: Message) -> None:
        if msg.value() is None and _is_shadow_key(msg.key()):
            # A tombstone withdraws the shadow (rejected by the live comparison).
            self.champion.clear_shadow()
            return
        try:
            # Any other empty message is dead-lettered (decode): the champion is replaced by
            # publishing another release, or by a rollback, never withdrawn.
            record = self.serde.decode(msg.value())
            self.champion.offer(record)
        except (SchemaError, ModelRejected) as exc:
            stage = "decode" if isinstance(exc, SchemaError) else "model"
            log.error(
                "model message %s[%d]@%d refused: %s",
                msg.topic(),
                msg.partition(),
                msg.offset(),
                exc,
            )
            self.dlq.send(
                DeadLetter(
                    msg.topic() or "",
                    msg.partition() or 0,
                    msg.offset() or 0,
                    stage,
                    str(exc),
                    msg.key(),
                    msg.value(),
                )
            )
            self.dlq.flush()


def latest_releases(backlog: list[Message], serde: Serde) -> tuple[list[Release], Release | None]:
    """Every decodable champion release of the backlog, and the shadow left in place (None
    when withdrawn or promoted since). Undecodable ones were dead-lettered when they came."""
    champions: list[Release] = []
    shadow: Release | None = None
    for msg in backlog:
        if msg.value() is None:
            if _is_shadow_key(msg.key()):
                shadow = None  # withdrawn
            continue
        try:
            record = serde.decode(msg.value())
        except SchemaError:
            continue
        if record.get("role") == ReleaseRole.SHADOW:
            shadow = record
        else:
            champions.append(record)
            if shadow is not None and shadow.get("version") == record.get("version"):
                shadow = None  # promoted
    return champions, shadow


def serve_first(champion: Champion, releases: list[Release]) -> str | None:
    """Offer releases in turn until one serves; its version, or None if all were refused."""
    for record in releases:
        try:
            return champion.offer(record).version
        except ModelRejected as exc:
            log.error("model %s refused: %s", record.get("version"), exc)
    return None


def _is_shadow_key(key: bytes | None) -> bool:
    return key is not None and key.endswith(SHADOW_SUFFIX.encode())
