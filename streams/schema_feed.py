"""Writer schemas registered on the schemas topic, checked, then added to the worker's registry."""

from __future__ import annotations

import json
import logging

from confluent_kafka import Message
from fastavro.schema import SchemaParseException

from streamlearn.foundation.settings import Settings
from streamlearn.schemas import SchemaRegistry
from streamlearn.schemas.serde import admit
from streamlearn.streams.follower import CompactedFollower

log = logging.getLogger(__name__)


class SchemaFeed:
    """Every registered writer schema that resolves against its record becomes decodable."""

    def __init__(self, settings: Settings, registry: SchemaRegistry) -> None:
        self.registry = registry
        self.refused = 0
        self.follower = CompactedFollower(
            settings,
            settings.topic("schemas"),
            self._on_backlog,
            self._on_message,
        )

    def start(self) -> None:
        self.follower.start()

    def stop(self) -> None:
        self.follower.stop()

    def _on_backlog(self, backlog: list[Message]) -> None:
        for msg in backlog:
            self._on_message(msg)

    def _on_message(self, msg: Message) -> None:
        # Anyone who can write to the topic can put anything on it, bypassing `schemas
        # register`: the same checks run here (it parses, resolves against the record it names,
        # collides with no known fingerprint). A refused one is logged, never raised (at start
        # that would stop every worker); messages written with it stay undecodable.
        try:
            schema = json.loads(msg.value() or b"")
            if not isinstance(schema, dict) or schema.get("type") != "record":
                raise ValueError("not an Avro record schema")
            fp = admit(self.registry, schema)
        except (ValueError, TypeError, KeyError, SchemaParseException) as exc:
            self.refused += 1
            log.error("refusing the schema at %s@%d: %s", msg.topic(), msg.offset(), exc)
            return
        log.info("writer schema %s registered (%s)", schema.get("name"), fp.hex())
