"""Kafka client options translated once for confluent-kafka and for Faust, plus topic set-up."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streamlearn.foundation.errors import BrokerUnavailable, ConfigError
from streamlearn.foundation.settings import TOPICS, Settings

# Model releases can exceed the broker's default 1 MB message limit.
MODELS_MAX_BYTES = 64 * 1024 * 1024
# What a cluster answers when it cannot create a topic as the settings ask.
SETTING_ERRORS = frozenset(
    {KafkaError.INVALID_REPLICATION_FACTOR, KafkaError.INVALID_CONFIG, KafkaError.POLICY_VIOLATION}
)


def ssl_locations(
    cafile: Path | None, certfile: Path | None, keyfile: Path | None
) -> dict[str, str]:
    """The ssl.*.location options (librdkafka's names, which the schema registry client also
    takes) of the files that are set."""
    files = {
        "ssl.ca.location": cafile,
        "ssl.certificate.location": certfile,
        "ssl.key.location": keyfile,
    }
    return {key: str(path) for key, path in files.items() if path}


def confluent_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """librdkafka options: bootstrap plus the security passthrough."""
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol.lower(),
        # librdkafka writes its own lines to stderr: keep errors, not the transient notices
        # (coordinator loading, purged queues) a starting broker causes; failures that matter
        # reach us through delivery reports and exceptions anyway.
        "log_level": 3,
    }
    if settings.log_format == "json":
        # librdkafka's own lines then reach Python logging (served by poll) instead of stderr.
        conf["logger"] = logging.getLogger("librdkafka")
    if settings.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
        conf["sasl.username"] = settings.kafka_sasl_username or ""
        conf["sasl.password"] = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        )
    conf.update(
        ssl_locations(
            settings.kafka_ssl_cafile, settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile
        )
    )
    if settings.kafka_ssl_key_password:
        conf["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
    conf.update(extra)
    return conf


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """confluent_config for a Producer: keys hashed with murmur2, as the Java client and Faust
    (aiokafka) do, so one key lands on one partition whoever writes it (librdkafka's default,
    consistent_random, hashes with CRC32)."""
    return confluent_config(settings, **{"partitioner": "murmur2_random", **extra})


def faust_broker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for faust.App: broker URL and credentials."""
    import faust

    servers = ";".join(f"kafka://{h}" for h in settings.kafka_bootstrap.split(","))
    opts: dict[str, Any] = {"broker": servers}
    proto = settings.kafka_security_protocol
    ctx = None
    if proto in ("SSL", "SASL_SSL"):
        ctx = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
        if settings.kafka_ssl_certfile:
            key_password = settings.kafka_ssl_key_password
            ctx.load_cert_chain(
                str(settings.kafka_ssl_certfile),
                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
                key_password.get_secret_value() if key_password else None,
            )
    if proto.startswith("SASL"):
        password = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        )
        mech = settings.kafka_sasl_mechanism or "PLAIN"
        if mech == "PLAIN":
            opts["broker_credentials"] = faust.SASLCredentials(
                username=settings.kafka_sasl_username, password=password, ssl_context=ctx
            )
        else:
            opts["broker_credentials"] = faust.SASLCredentials(
                username=settings.kafka_sasl_username,
                password=password,
                mechanism=mech,
                ssl_context=ctx,
            )
    elif ctx is not None:
        opts["broker_credentials"] = faust.SSLCredentials(ctx)
    return opts


def admin(settings: Settings) -> AdminClient:
    return AdminClient(confluent_config(settings))


def check_reachable(settings: Settings, timeout: float = 10.0) -> None:
    """Raise BrokerUnavailable (one clear line) if the bootstrap servers do not answer."""
    # A quiet client: librdkafka would print a line per failed connection attempt.
    probe = AdminClient(confluent_config(settings, log_level=0))
    try:
        probe.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"Kafka at {settings.kafka_bootstrap} did not answer within {timeout:.0f}s "
            "(start the local one with `streamlearn up`, or set STREAMLEARN_KAFKA_BOOTSTRAP)"
        ) from exc


def ensure_topics(settings: Settings, timeout: float = 30.0) -> None:
    """Create the contract's topics if missing (idempotent); compacted where the contract says."""
    client = admin(settings)
    try:
        existing = set(client.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"Kafka at {settings.kafka_bootstrap} did not answer: {exc.args[0]}"
        ) from exc
    wanted = [new_topic(settings, name) for name in TOPICS if settings.topic(name) not in existing]
    if not wanted:
        return
    for topic, fut in client.create_topics(wanted, operation_timeout=timeout).items():
        try:
            fut.result(timeout=timeout)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            # The cluster refuses the settings (too few brokers for the factor, a policy): a
            # setting to fix, not an outage.
            kind = ConfigError if error.code() in SETTING_ERRORS else BrokerUnavailable
            raise kind(
                f"cannot create topic {topic} (replication factor "
                f"{settings.topic_replication_factor}, STREAMLEARN_TOPIC_REPLICATION_FACTOR; "
                f"min.insync.replicas {settings.topic_min_insync_replicas}): {error.str()}"
            ) from exc


def topic_config(settings: Settings) -> dict[str, str]:
    """Configs every topic we create carries (Faust's changelog too): the write quorum."""
    return {"min.insync.replicas": str(settings.topic_min_insync_replicas)}


def new_topic(settings: Settings, name: str) -> NewTopic:
    """One of the contract's topics as it is created: compacted where the contract says, the
    replication factor and min.insync.replicas of the settings."""
    config = topic_config(settings)
    partitions = settings.partitions
    if name in ("models", "schemas"):
        config["cleanup.policy"] = "compact"
        partitions = 1
    if name == "models":
        config["max.message.bytes"] = str(MODELS_MAX_BYTES)
    return NewTopic(
        settings.topic(name),
        num_partitions=partitions,
        replication_factor=settings.topic_replication_factor,
        config=config,
    )


def produce(producer: Producer, topic: str, value: bytes | None, **kwargs: Any) -> None:
    """Produce one message; while librdkafka's local queue is full, serve deliveries and retry.

    BufferError means the client holds queue.buffering.max.messages already: polling lets it
    hand some to the broker (and run their delivery callbacks) so this one fits.
    """
    while True:
        try:
            producer.produce(topic, value=value, **kwargs)
            return
        except BufferError:
            producer.poll(0.05)
