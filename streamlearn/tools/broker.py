"""The local single-node Kafka broker (KRaft) from Maven-fetched jars, without Docker.

Its files (config, data, pid, logs, cached classpath) live under `<state_dir>/kafka/`."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streamlearn.foundation.errors import BrokerUnavailable, ConfigError
from streamlearn.foundation.kafka import confluent_config
from streamlearn.foundation.settings import Settings
from streamlearn.tools.broker_config import SASL_MECHANISMS, new_cluster_id, render_properties
from streamlearn.tools.broker_runtime import (
    LOG4J,
    POM,
    find_java,
    parse_java_major,
    resolve_classpath,
)
from streamlearn.tools.tls import ensure_broker_tls

# The pieces that moved to broker_config/broker_runtime stay importable from here.
__all__ = [
    "LOG4J",
    "POM",
    "ca_file",
    "down",
    "is_running",
    "local_port",
    "new_cluster_id",
    "parse_java_major",
    "pid",
    "render_properties",
    "resolve_classpath",
    "up",
]

MAIN_CLASS = "kafka.Kafka"
LOCAL_HOSTS = ("127.0.0.1", "localhost")

# Brokers started by this process, so their exit is reaped (no zombie looks alive).
_children: dict[int, subprocess.Popen[bytes]] = {}


def local_port(settings: Settings) -> int:
    """The port of a local bootstrap (127.0.0.1/localhost:PORT); ConfigError otherwise."""
    bootstrap = settings.kafka_bootstrap.strip()
    host, _, port = bootstrap.rpartition(":")
    if "," in bootstrap or host not in LOCAL_HOSTS or not port.isdigit():
        raise ConfigError(
            f"`up` only manages a local broker, but STREAMLEARN_KAFKA_BOOTSTRAP is {bootstrap!r}: "
            "set it to 127.0.0.1:PORT, or start your own Kafka and skip `up`"
        )
    if not 1024 <= int(port) < 65535:
        raise ConfigError(
            f"local broker port {port} must be in 1024..65534 (the next is for KRaft)"
        )
    return int(port)


def up(settings: Settings, wait_s: float = 90) -> str:
    """Start the local broker unless one already answers; return its bootstrap string."""
    port = local_port(settings)
    proto = settings.kafka_security_protocol
    if proto.startswith("SASL") and not (
        settings.kafka_sasl_username and settings.kafka_sasl_password
    ):
        raise ConfigError(f"a {proto} broker needs STREAMLEARN_KAFKA_SASL_USERNAME and _PASSWORD")
    bootstrap = f"127.0.0.1:{port}"
    local = settings.with_overrides(kafka_bootstrap=bootstrap)
    if proto.endswith("SSL") and settings.kafka_ssl_cafile is None:
        # `up` itself trusts the CA it made; other clients are told where it is (ca_file).
        local = local.with_overrides(kafka_ssl_cafile=ca_file(settings))
    kdir = _dir(settings)
    kdir.mkdir(parents=True, exist_ok=True)
    with _lock(kdir):
        pid = _running_pid(kdir)
        if pid is not None:  # ours: running, or still starting
            running_on = _configured_port(kdir)
            if running_on != port:
                raise ConfigError(
                    f"this state dir's broker already runs on port {running_on}: "
                    "run `streamlearn down` first to move it"
                )
            return _wait_ready(local, pid, wait_s)
        if _port_open(port):
            if _answers(local, timeout=5):
                return bootstrap
            raise BrokerUnavailable(
                f"port {port} is taken by something that is not a Kafka broker: "
                "pick another port in STREAMLEARN_KAFKA_BOOTSTRAP"
            )
        if _port_open(port + 1):
            raise ConfigError(f"port {port + 1} (the KRaft controller's, port + 1) is taken")
        return _wait_ready(local, _start(settings, kdir, port), wait_s)


def _start(settings: Settings, kdir: Path, port: int) -> int:
    """Write the config, format storage once, launch java detached; return its pid."""
    java = find_java()
    cp = resolve_classpath(kdir)
    props, data = kdir / "server.properties", kdir / "data"
    user, password = _sasl_user(settings)
    tls = None
    if settings.kafka_security_protocol.endswith("SSL"):
        files = ensure_broker_tls(kdir)
        tls = (files, files.password())
    props.touch(mode=0o600)  # it may hold the SASL and keystore passwords
    props.chmod(0o600)
    props.write_text(render_properties(port, data, user, password, tls))
    jvm = [f"-Xmx{settings.broker_heap}", f"-Xms{settings.broker_heap}", "-XX:+UseG1GC"]
    jvm += ["-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J}"]
    jvm += [f"-Dkafka.logs.dir={kdir}", "-cp", cp]
    if not (data / "meta.properties").exists():
        fmt = [java, *jvm, "kafka.tools.StorageTool", "format", "-t", new_cluster_id()]
        if user:  # SCRAM credentials live in the cluster metadata, written at format time
            for mech in SASL_MECHANISMS[1:]:
                fmt += ["--add-scram", f"{mech}=[name={user},password={password}]"]
        proc = subprocess.run([*fmt, "-c", str(props)], capture_output=True, text=True)
        if proc.returncode != 0:
            output = _last(proc.stderr + proc.stdout)
            if password:
                output = output.replace(password, "***")
            raise BrokerUnavailable(f"formatting {data} failed: {output}")
    with (kdir / "broker.out").open("wb") as out:
        child = subprocess.Popen(
            [java, *jvm, MAIN_CLASS, str(props)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=kdir,
            start_new_session=True,
        )
    _children[child.pid] = child
    (kdir / "broker.pid").write_text(f"{child.pid}\n")
    return child.pid


def down(settings: Settings) -> bool:
    """Stop the broker recorded in the pid file (SIGTERM, then SIGKILL after 20 s)."""
    kdir = _dir(settings)
    pid = _running_pid(kdir)
    if pid is not None:
        _stop(kdir, pid, grace_s=20)
    (kdir / "broker.pid").unlink(missing_ok=True)
    return pid is not None


def is_running(settings: Settings) -> bool:
    """Whether the broker recorded under this state dir is alive."""
    return _running_pid(_dir(settings)) is not None


def pid(settings: Settings) -> int | None:
    """The process id of the running local broker of this state dir, if any."""
    return _running_pid(_dir(settings))


def ca_file(settings: Settings) -> Path:
    """The CA certificate of the local SSL broker: clients trust it (KAFKA_SSL_CAFILE)."""
    return ensure_broker_tls(_dir(settings)).ca


def _sasl_user(settings: Settings) -> tuple[str | None, str | None]:
    if not settings.kafka_security_protocol.startswith("SASL"):
        return None, None
    password = settings.kafka_sasl_password
    return settings.kafka_sasl_username, password.get_secret_value() if password else None


def _dir(settings: Settings) -> Path:
    return settings.state_dir / "kafka"


@contextmanager
def _lock(kdir: Path) -> Iterator[None]:
    """One `up` at a time per state dir, across processes."""
    with (kdir / "up.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _configured_port(kdir: Path) -> int | None:
    text = _read(kdir / "server.properties")
    m = re.search(r"^listeners=(?:SASL_)?(?:PLAINTEXT|SSL)://[^:]+:(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _running_pid(kdir: Path) -> int | None:
    """The pid in broker.pid if that process is alive and is this state dir's broker."""
    try:
        pid = int((kdir / "broker.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    child = _children.get(pid)
    if child is not None:  # started here: its cmdline may not show java until exec completes
        return pid if child.poll() is None else None
    cmd = _cmdline(pid)
    return pid if MAIN_CLASS in cmd and str(kdir / "server.properties") in cmd else None


def _cmdline(pid: int) -> str:
    if Path("/proc/self/cmdline").exists():
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            return ""
    ps = ["ps", "-ww", "-o", "command=", "-p", str(pid)]
    return subprocess.run(ps, capture_output=True, text=True, check=False).stdout


def _stop(kdir: Path, pid: int, grace_s: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _running_pid(kdir) != pid:
                return
            time.sleep(0.1)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _answers(settings: Settings, timeout: float, probe: bool = False) -> bool:
    """A Kafka broker answers metadata requests (and, with probe, creates/deletes a topic)."""
    client = AdminClient(confluent_config(settings, log_level=4))  # no info-level chatter
    try:
        if not client.list_topics(timeout=timeout).brokers:
            return False
        if probe:
            name = f"streamlearn-probe-{uuid.uuid4().hex[:12]}"
            topic = NewTopic(name, num_partitions=1, replication_factor=1)
            client.create_topics([topic], operation_timeout=timeout)[name].result(timeout)
            client.delete_topics([name], operation_timeout=timeout)[name].result(timeout)
    except (KafkaException, TimeoutError):
        return False
    return True


def _wait_ready(settings: Settings, pid: int, wait_s: float) -> str:
    kdir, port = _dir(settings), local_port(settings)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if _running_pid(kdir) != pid:
            raise BrokerUnavailable(f"the local Kafka broker exited: {_log_tail(kdir)}")
        if _port_open(port) and _answers(settings, timeout=3, probe=True):
            return settings.kafka_bootstrap
        time.sleep(0.25)
    _stop(kdir, pid, grace_s=5)
    (kdir / "broker.pid").unlink(missing_ok=True)
    raise BrokerUnavailable(
        f"the local Kafka broker was not ready after {wait_s:.0f}s: {_log_tail(kdir)}"
    )


def _last(text: str, lines: int = 1) -> str:
    return " | ".join(ln.strip() for ln in text.strip().splitlines()[-lines:])


def _log_tail(kdir: Path, lines: int = 8) -> str:
    parts = []
    for name in ("broker.log", "broker.out"):
        text = _read(kdir / name)
        if text.strip():
            parts.append(f"{name}: {_last(text, lines)}")
    return "; ".join(parts) or f"no output in {kdir}"
