"""The local broker's configuration and safety checks, without starting Java."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from streamlearn.foundation.errors import ConfigError, MissingToolError
from streamlearn.foundation.settings import Settings
from streamlearn.tools import broker
from tests.conftest import free_port


def _settings(tmp_path: Path, bootstrap: str = "127.0.0.1:39092") -> Settings:
    return Settings(kafka_bootstrap=bootstrap, state_dir=tmp_path / "state")


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_properties_describe_a_combined_node_with_the_controller_on_the_next_port(
    tmp_path: Path,
) -> None:
    props = _props(broker.render_properties(39092, tmp_path / "data"))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:39093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:39092"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["log.retention.hours"] == "168"
    assert props["auto.create.topics.enable"] == "true"


def test_properties_allow_big_model_releases(tmp_path: Path) -> None:
    props = _props(broker.render_properties(39092, tmp_path))
    assert int(props["message.max.bytes"]) == 64 * 1024 * 1024
    assert int(props["socket.request.max.bytes"]) > int(props["message.max.bytes"])


@pytest.mark.parametrize("bootstrap", ["127.0.0.1:39092", "localhost:39092", " 127.0.0.1:39092 "])
def test_local_bootstraps_are_accepted(tmp_path: Path, bootstrap: str) -> None:
    assert broker.local_port(_settings(tmp_path, bootstrap)) == 39092


@pytest.mark.parametrize(
    "bootstrap",
    ["kafka:9092", "10.0.0.5:9092", "127.0.0.1:9092,127.0.0.1:9093", "127.0.0.1", "127.0.0.1:x"],
)
def test_up_refuses_a_non_local_bootstrap(tmp_path: Path, bootstrap: str) -> None:
    with pytest.raises(ConfigError, match="`up` only manages a local broker"):
        broker.up(_settings(tmp_path, bootstrap))


def test_up_refuses_a_port_without_room_for_the_controller(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="65535"):
        broker.up(_settings(tmp_path, "127.0.0.1:65535"))


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_292"', 8),
        ("no java here", None),
    ],
)
def test_java_versions_are_parsed(output: str, major: int | None) -> None:
    assert broker.parse_java_major(output) == major


def test_cluster_ids_look_like_kafkas() -> None:
    for _ in range(200):
        cid = broker.new_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_missing_java_is_one_actionable_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    with pytest.raises(MissingToolError, match="Java 17\\+ is needed") as info:
        broker.up(_settings(tmp_path, f"127.0.0.1:{free_port()}"))
    assert "\n" not in str(info.value)


def test_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    _script(home / "bin" / "java", "echo 'java version \"1.8.0_292\"' >&2")
    monkeypatch.setenv("JAVA_HOME", str(home))
    with pytest.raises(MissingToolError, match="found 8"):
        broker.up(_settings(tmp_path, f"127.0.0.1:{free_port()}"))


def test_missing_maven_is_one_actionable_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    _script(home / "bin" / "java", "echo 'openjdk version \"17.0.15\"' >&2")
    monkeypatch.setenv("JAVA_HOME", str(home))
    monkeypatch.setenv("PATH", str(home / "bin"))
    with pytest.raises(MissingToolError, match="Maven is needed"):
        broker.up(_settings(tmp_path, f"127.0.0.1:{free_port()}"))


def test_classpath_is_resolved_once_per_pom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jar, calls = tmp_path / "kafka.jar", tmp_path / "calls"
    jar.touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A fake mvn that writes the classpath to -Dmdep.outputFile=... and counts its calls.
    _script(
        bin_dir / "mvn",
        f'echo x >> {calls}\nfor a in "$@"; do case $a in -Dmdep.outputFile=*) '
        f'printf %s {jar} > "${{a#-Dmdep.outputFile=}}";; esac; done',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    pom, kdir = tmp_path / "pom.xml", tmp_path / "kafka"
    pom.write_text("<project/>")

    assert broker.resolve_classpath(kdir, pom) == str(jar)
    assert broker.resolve_classpath(kdir, pom) == str(jar)
    assert calls.read_text().count("x") == 1

    pom.write_text("<project><!-- changed --></project>")
    assert broker.resolve_classpath(kdir, pom) == str(jar)
    assert calls.read_text().count("x") == 2


def test_down_never_kills_a_process_that_is_not_its_broker(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    kdir = settings.state_dir / "kafka"
    kdir.mkdir(parents=True)
    (kdir / "broker.pid").write_text(f"{os.getpid()}\n")  # a stale pid, reused by this process

    assert broker.is_running(settings) is False
    assert broker.down(settings) is False
    assert not (kdir / "broker.pid").exists()


def test_down_without_a_broker_is_a_no_op(tmp_path: Path) -> None:
    assert broker.down(_settings(tmp_path)) is False
    assert broker.is_running(_settings(tmp_path)) is False


def test_the_pom_and_logging_config_ship_beside_the_package() -> None:
    assert broker.POM.is_file() and broker.LOG4J.is_file()
