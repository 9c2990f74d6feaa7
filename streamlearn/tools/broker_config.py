"""The local broker's server.properties: listeners, SASL and TLS, and a fresh cluster id.

Pure text building; `broker.py` writes the file and starts the process."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from streamlearn.foundation.errors import ConfigError
from streamlearn.tools.tls import BrokerTls

MESSAGE_MAX_BYTES = 64 * 1024 * 1024  # model releases can be big
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
JAAS_UNSAFE = ' "\\;=,[]'


def render_properties(
    port: int,
    data_dir: Path,
    sasl_user: str | None = None,
    sasl_password: str | None = None,
    tls: tuple[BrokerTls, str] | None = None,
) -> str:
    """server.properties of a combined broker+controller; the controller listens on port + 1.

    With a SASL user, clients authenticate with PLAIN, or SCRAM-SHA-256/512 with the
    credentials `format` stored; with TLS files (and their password) the client listener is
    SSL or SASL_SSL. The controller listener stays PLAINTEXT on 127.0.0.1.
    """
    listener = ("SASL_" if sasl_user else "") + ("SSL" if tls else "PLAINTEXT")
    props = _base_properties(port, data_dir, listener)
    if sasl_user:
        props |= _sasl_properties(listener, sasl_user, sasl_password or "")
    if tls:
        props |= _tls_properties(*tls)
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _base_properties(port: int, data_dir: Path, listener: str) -> dict[str, str]:
    """A single-node KRaft broker+controller, sized for a laptop, replication factor 1."""
    cport = port + 1
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "listeners": f"{listener}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"{listener}://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": f"{listener}:{listener},CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": listener,
        "log.dirs": str(data_dir),
        "num.partitions": "4",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "auto.create.topics.enable": "true",
        "log.retention.hours": "168",
        "message.max.bytes": str(MESSAGE_MAX_BYTES),
        "replica.fetch.max.bytes": str(MESSAGE_MAX_BYTES),
        "socket.request.max.bytes": str(2 * MESSAGE_MAX_BYTES),
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }


def _sasl_properties(listener: str, sasl_user: str, sasl_password: str) -> dict[str, str]:
    """PLAIN for the broker itself and for clients; SCRAM users come from `format`."""
    user, password = _jaas_quote(sasl_user), _jaas_quote(sasl_password)
    prefix = f"listener.name.{listener.lower()}"
    props = {
        "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        f"{prefix}.plain.sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{user}" password="{password}" user_{user}="{password}";'
        ),
    }
    for mech in SASL_MECHANISMS[1:]:
        props[f"{prefix}.{mech.lower()}.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        )
    return props


def _tls_properties(files: BrokerTls, password: str) -> dict[str, str]:
    return {
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(files.keystore),
        "ssl.keystore.password": password,
        "ssl.key.password": password,
        # The broker talks to its own listener too: it trusts the same CA as clients.
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(files.ca),
        "ssl.client.auth": "none",
    }


def _jaas_quote(value: str) -> str:
    """A SASL user name or password as it may stand in the JAAS line and the SCRAM argument."""
    if not value or any(c in value for c in JAAS_UNSAFE) or not value.isprintable():
        raise ConfigError(
            "the local broker's SASL user name and password must be non-empty, printable, "
            f"without spaces or any of {JAAS_UNSAFE.strip()}: change STREAMLEARN_KAFKA_SASL_*"
        )
    return value


def new_cluster_id() -> str:
    """A Kafka cluster id (base64url of a random UUID), as `StorageTool random-uuid` makes."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid
