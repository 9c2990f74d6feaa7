"""Model hot-swap: every release on the models topic is verified, then served or refused.

Champions are keyed by model name, shadows by "<name>.shadow"; a tombstone (no value) on a
shadow key withdraws the shadow (rejected by the live comparison).
"""

from __future__ import annotations

import logging

from confluent_kafka import Message

from streamlearn.domain.release import SHADOW_SUFFIX
from streamlearn.foundation.dead_letters import DeadLetter, DeadLetterWriter
from streamlearn.foundation.errors import ModelRejected
from streamlearn.foundation.settings import Settings
from streamlearn.schemas import SchemaError, Serde
from streamlearn.streams.champion import Champion
from streamlearn.streams.follower import CompactedFollower

log = logging.getLogger(__name__)


class ModelFeed:
    """Loads the newest valid champion (and shadow) at start, then swaps on each release."""

    def __init__(self, settings: Settings, champion: Champion, dlq: DeadLetterWriter) -> None:
        self.champion = champion
        self.dlq = dlq
        self.serde = Serde("ModelRelease")
        self.follower = CompactedFollower(
            settings, settings.topic("models"), self._catch_up, self._on_message
        )

    def start(self) -> None:
        self.follower.start()

    def stop(self) -> None:
        self.follower.stop()

    def _catch_up(self, backlog: list[Message]) -> None:
        champions: list[dict] = []
        shadow: dict | None = None
        for msg in backlog:
            if msg.value() is None:
                if _is_shadow_key(msg.key()):
                    shadow = None  # withdrawn
                continue
            try:
                record = self.serde.decode(msg.value())
            except SchemaError:
                continue  # dead-lettered when it first arrived
            if record.get("role") == "shadow":
                shadow = record
            else:
                champions.append(record)
                if shadow is not None and shadow.get("version") == record.get("version"):
                    shadow = None  # promoted
        # The newest champion that verifies serves; a refused one leaves the one before it.
        for record in reversed(champions):
            try:
                self.champion.offer(record)
                break
            except ModelRejected as exc:
                log.error("model %s refused: %s", record.get("version"), exc)
        if shadow is not None:
            try:
                self.champion.offer(shadow)
            except ModelRejected as exc:
                log.error("shadow model %s refused: %s", shadow.get("version"), exc)

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


def _is_shadow_key(key: bytes | None) -> bool:
    return key is not None and key.endswith(SHADOW_SUFFIX.encode())
