"""The local broker's SASL_PLAINTEXT configuration, without starting Java."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamlearn.foundation.errors import ConfigError
from streamlearn.tools import broker


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_sasl_listener_for_clients_controller_stays_plaintext(tmp_path: Path) -> None:
    props = _props(broker.render_properties(39092, tmp_path, "alice", "s3cret-pw"))
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:39092"
    assert props["listener.security.protocol.map"] == (
        "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
    )
    assert props["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    jaas = props["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert 'user_alice="s3cret-pw"' in jaas and jaas.endswith(";")


def test_plaintext_by_default(tmp_path: Path) -> None:
    props = _props(broker.render_properties(39092, tmp_path))
    assert "sasl.enabled.mechanisms" not in props
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


@pytest.mark.parametrize("password", ['a"b', "a;b", "a b", "a,b", "a]b", ""])
def test_credentials_that_would_break_the_jaas_line_are_refused(
    tmp_path: Path, password: str
) -> None:
    with pytest.raises(ConfigError):
        broker.render_properties(39092, tmp_path, "alice", password)


def test_ssl_listener_with_the_generated_keystore(tmp_path: Path) -> None:
    from streamlearn.tools.tls import BrokerTls

    files = BrokerTls(tmp_path / "ca.pem", tmp_path / "broker.p12", tmp_path / "pw")
    props = _props(broker.render_properties(39092, tmp_path, tls=(files, "ks-pw")))
    assert props["listeners"] == "SSL://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["listener.security.protocol.map"] == "SSL:SSL,CONTROLLER:PLAINTEXT"
    assert props["ssl.keystore.location"] == str(files.keystore)
    assert props["ssl.keystore.password"] == props["ssl.key.password"] == "ks-pw"
    assert props["ssl.truststore.location"] == str(files.ca)


def test_sasl_ssl_listener(tmp_path: Path) -> None:
    from streamlearn.tools.tls import BrokerTls

    files = BrokerTls(tmp_path / "ca.pem", tmp_path / "broker.p12", tmp_path / "pw")
    props = _props(broker.render_properties(39092, tmp_path, "alice", "pw1", (files, "ks")))
    assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:39092"
    assert "listener.name.sasl_ssl.plain.sasl.jaas.config" in props
