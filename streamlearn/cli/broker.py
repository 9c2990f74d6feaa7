"""`streamlearn up` / `down`: the local Kafka broker."""

from __future__ import annotations

from streamlearn.cli.common import Bootstrap, StateDir, console, load_settings
from streamlearn.foundation.kafka import ensure_topics
from streamlearn.tools import broker


def up(bootstrap: Bootstrap = None, state_dir: StateDir = None) -> None:
    """Start the local Kafka broker (reused if running) and create the topics."""
    settings = load_settings(bootstrap, state_dir=state_dir)
    address = broker.up(settings)
    if settings.kafka_security_protocol.endswith("SSL") and settings.kafka_ssl_cafile is None:
        ca = broker.ca_file(settings)
        console.print(
            f"Kafka is up at {address} (TLS): clients need STREAMLEARN_KAFKA_SSL_CAFILE={ca}"
        )
        return
    ensure_topics(settings)
    console.print(f"Kafka is up at {address}")


def down(bootstrap: Bootstrap = None, state_dir: StateDir = None) -> None:
    """Stop the local Kafka broker started by `up` (nothing else)."""
    stopped = broker.down(load_settings(bootstrap, state_dir=state_dir))
    console.print("Kafka stopped" if stopped else "no local Kafka was running")
