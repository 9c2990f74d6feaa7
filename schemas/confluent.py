"""The Confluent wire format (magic 0, 4-byte schema id, Avro body) against a schema registry.

Writer schemas come from the registry by id through confluent-kafka's own
SchemaRegistryClient, once per id, and are checked like any other writer schema (it must
parse, carry no references, and resolve against the reader). The lookup runs on the caller's
thread, so it is bounded: a short timeout and no retries, unknown ids are remembered as
unknown, at most LOOKUPS_PER_S new ids are asked for each second, and after a transport
failure the registry is left alone for RETRY_S (messages meanwhile fail with the reason).
Our own output schemas are registered under `<topic>-value` (TopicNameStrategy), as
Confluent's AvroSerializer would, and their ids head what we write.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from streamlearn.foundation.errors import ConfigError, RegistryUnavailable
from streamlearn.foundation.kafka import ssl_locations
from streamlearn.foundation.settings import Settings
from streamlearn.schemas.registry import SchemaError, WriterSchema, writer_schema
from streamlearn.schemas.resolution import incompatibilities
from streamlearn.schemas.serde import CONFLUENT_MAGIC

# Each contract record and the topic it travels on (the subject is "<topic>-value").
RECORD_TOPICS = {
    "Transaction": "transactions",
    "Outcome": "outcomes",
    "Prediction": "predictions",
    "ModelRelease": "models",
    "DriftEvent": "drift-events",
}
# What STREAMLEARN_OUTPUT_FORMAT=confluent writes in the Confluent format.
OUTPUT_RECORDS = ("Prediction", "DriftEvent")
LOOKUPS_PER_S = 20
RETRY_S = 30.0
LOOKUP_TIMEOUT_S = 2.0
MAX_REMEMBERED = 10_000


def client_config(settings: Settings, *, worker: bool = True) -> dict[str, Any]:
    """SchemaRegistryClient options from the STREAMLEARN_SCHEMA_REGISTRY_* settings."""
    conf: dict[str, Any] = {"url": settings.schema_registry_url}
    if settings.schema_registry_username:
        password = settings.schema_registry_password
        secret = password.get_secret_value() if password else ""
        conf["basic.auth.user.info"] = f"{settings.schema_registry_username}:{secret}"
    conf.update(
        ssl_locations(
            settings.schema_registry_ssl_cafile,
            settings.schema_registry_ssl_certfile,
            settings.schema_registry_ssl_keyfile,
        )
    )
    if worker:  # a lookup blocks the scoring loop: fail fast, the next message tries again
        conf.update({"timeout": LOOKUP_TIMEOUT_S, "max.retries": 0})
    else:  # a command: a person waits for the answer
        conf.update({"timeout": 10.0, "max.retries": 1})
    return conf


class ConfluentRegistry:
    """Writer schemas by Confluent id, and the ids of the schemas this process writes."""

    def __init__(
        self,
        client: SchemaRegistryClient,
        topic: Callable[[str], str],
        *,
        output: bool = False,
        url: str = "",
    ) -> None:
        self.client, self.topic, self.output, self.url = client, topic, output, url
        self._writers: dict[int, tuple[dict[str, Any], WriterSchema]] = {}
        self._verdicts: dict[tuple[int, str], str | None] = {}
        self._failed: dict[int, tuple[float, str]] = {}
        self._down_until = 0.0
        self._window = (0.0, 0)  # (second it counts, lookups in it)

    @classmethod
    def from_settings(cls, settings: Settings, *, worker: bool = True) -> ConfluentRegistry | None:
        """The registry the settings name; None without STREAMLEARN_SCHEMA_REGISTRY_URL."""
        output = settings.output_format == "confluent"
        if not settings.schema_registry_url:
            if output:
                raise ConfigError(
                    "STREAMLEARN_OUTPUT_FORMAT=confluent needs a schema registry: "
                    "set STREAMLEARN_SCHEMA_REGISTRY_URL"
                )
            return None
        from streamlearn.foundation.store.urls import redact_url  # the store package is heavy

        url = redact_url(settings.schema_registry_url)
        try:
            client = SchemaRegistryClient(client_config(settings, worker=worker))
        except (ValueError, TypeError, OSError) as exc:
            raise ConfigError(f"schema registry settings for {url}: {exc}") from exc
        return cls(client, settings.topic, output=output, url=url)

    def subject(self, name: str) -> str:
        """The subject a contract record's schemas live under ("<topic>-value")."""
        return f"{self.topic(RECORD_TOPICS[name])}-value"

    def register(self, name: str, schema: dict[str, Any]) -> int:
        """Register a schema under its record's subject (the registry checks compatibility)."""
        subject = self.subject(name)
        try:
            return self.client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
        except SchemaRegistryError as exc:
            if exc.http_status_code in (409, 422):
                raise SchemaError(
                    f"the schema registry refused {name} under {subject}: {exc.error_message}"
                ) from exc
            raise RegistryUnavailable(f"the schema registry at {self.url} failed: {exc}") from exc
        except Exception as exc:  # httpx transport errors: refused, TLS, timeouts
            raise RegistryUnavailable(
                f"the schema registry at {self.url} did not answer ({type(exc).__name__}: {exc}); "
                "check STREAMLEARN_SCHEMA_REGISTRY_URL and its credentials"
            ) from exc

    def output_header(self, name: str, schema: dict[str, Any]) -> bytes | None:
        """The 5-byte header to write `name` with, if this process writes it Confluent-framed."""
        if not self.output or name not in OUTPUT_RECORDS:
            return None
        return bytes([CONFLUENT_MAGIC]) + self.register(name, schema).to_bytes(4, "big")

    def writer_for(self, schema_id: int, reader_name: str, reader: dict[str, Any]) -> WriterSchema:
        """The writer schema of an id, once it is known to resolve into the reader schema."""
        raw, entry = self._writers.get(schema_id) or self._fetch(schema_id)
        key = (schema_id, reader_name)
        if key not in self._verdicts:
            if len(self._verdicts) >= MAX_REMEMBERED:
                self._verdicts.pop(next(iter(self._verdicts)))
            problems = incompatibilities(raw, reader)
            self._verdicts[key] = "; ".join(problems[:3]) if problems else None
        verdict = self._verdicts[key]
        if verdict is not None:
            raise SchemaError(
                f"schema id {schema_id} ({entry.name}) does not resolve against {reader_name}: "
                f"{verdict}"
            )
        return entry

    def _fetch(self, schema_id: int) -> tuple[dict[str, Any], WriterSchema]:
        now = time.monotonic()
        failed = self._failed.get(schema_id)
        if failed is not None and (failed[0] > now):
            raise SchemaError(failed[1])
        if now < self._down_until:
            raise SchemaError(
                f"schema id {schema_id}: the schema registry at {self.url} failed "
                f"{RETRY_S:.0f}s ago or less, not asked again yet"
            )
        second, count = self._window
        if int(now) == second and count >= LOOKUPS_PER_S:
            raise SchemaError(
                f"schema id {schema_id} not looked up: more than {LOOKUPS_PER_S} new schema ids "
                "in one second"
            )
        self._window = (int(now), count + 1 if int(now) == second else 1)
        try:
            found = self.client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            reason = f"schema id {schema_id} is not in the schema registry: {exc.error_message}"
            self._remember(schema_id, now + RETRY_S, reason)
            raise SchemaError(reason) from exc
        except Exception as exc:  # httpx transport errors: refused, TLS, timeouts
            self._down_until = now + RETRY_S
            raise SchemaError(
                f"schema id {schema_id}: the schema registry at {self.url} did not answer "
                f"({type(exc).__name__})"
            ) from exc
        try:
            raw = _avro_record(found)
            entry = writer_schema(raw)[1]
        except SchemaError as exc:  # an id's schema never changes: so does the verdict
            self._remember(schema_id, float("inf"), f"schema id {schema_id}: {exc}")
            raise SchemaError(f"schema id {schema_id}: {exc}") from exc
        if len(self._writers) >= MAX_REMEMBERED:
            self._writers.pop(next(iter(self._writers)))
        self._writers[schema_id] = (raw, entry)
        return raw, entry

    def _remember(self, schema_id: int, until: float, reason: str) -> None:
        if len(self._failed) >= MAX_REMEMBERED:
            self._failed.pop(next(iter(self._failed)))
        self._failed[schema_id] = (until, reason)


def _avro_record(found: Schema) -> dict[str, Any]:
    """The JSON of a registered Avro record schema; SchemaError for anything else."""
    if found.schema_type not in (None, "AVRO"):
        raise SchemaError(f"a {found.schema_type} schema, not Avro")
    if found.references:
        raise SchemaError("schema references are not supported: register a self-contained schema")
    try:
        raw = json.loads(found.schema_str or "")
    except ValueError as exc:
        raise SchemaError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("type") != "record":
        raise SchemaError("not an Avro record schema")
    return raw
