"""The local single-node Kafka broker (KRaft) from Maven-fetched jars, without Docker.

Its files (config, data, pid, logs, cached classpath) live under `<state_dir>/kafka/`."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import shutil
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

from streamlearn.foundation.errors import BrokerUnavailable, ConfigError, MissingToolError
from streamlearn.foundation.kafka import confluent_config
from streamlearn.foundation.settings import Settings
from streamlearn.tools.tls import BrokerTls, ensure_broker_tls

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
POM = COMPOSE_DIR / "pom.xml"
LOG4J = COMPOSE_DIR / "log4j2.xml"
MAIN_CLASS = "kafka.Kafka"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
MESSAGE_MAX_BYTES = 64 * 1024 * 1024  # model releases can be big
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
JAAS_UNSAFE = ' "\\;=,[]'

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
    cport = port + 1
    listener = ("SASL_" if sasl_user else "") + ("SSL" if tls else "PLAINTEXT")
    props = {
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
    if sasl_user:
        user, password = _jaas_quote(sasl_user), _jaas_quote(sasl_password or "")
        sasl_user = user
        prefix = f"listener.name.{listener.lower()}"
        props |= {
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            f"{prefix}.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{user}" password="{password}" user_{sasl_user}="{password}";'
            ),
        }
        for mech in SASL_MECHANISMS[1:]:
            props[f"{prefix}.{mech.lower()}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
    if tls:
        files, password = tls
        props |= {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(files.keystore),
            "ssl.keystore.password": password,
            "ssl.key.password": password,
            # The broker talks to its own listener too: it trusts the same CA as clients.
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(files.ca),
            "ssl.client.auth": "none",
        }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _jaas_quote(value: str) -> str:
    """A SASL user name or password as it may stand in the JAAS line and the SCRAM argument."""
    if not value or any(c in value for c in JAAS_UNSAFE) or not value.isprintable():
        raise ConfigError(
            "the local broker's SASL user name and password must be non-empty, printable, "
            f"without spaces or any of {JAAS_UNSAFE.strip()}: change STREAMLEARN_KAFKA_SASL_*"
        )
    return value


def parse_java_major(version_output: str) -> int | None:
    """17 from `openjdk version "17.0.15"`, 8 from `"1.8.0_292"`; None if unrecognised."""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def new_cluster_id() -> str:
    """A Kafka cluster id (base64url of a random UUID), as `StorageTool random-uuid` makes."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def resolve_classpath(kafka_dir: Path, pom: Path = POM) -> str:
    """The broker's classpath from Maven, cached in classpath.txt until the pom changes."""
    cache, stamp = kafka_dir / "classpath.txt", kafka_dir / "classpath.pom-sha256"
    pom_hash = hashlib.sha256(pom.read_bytes()).hexdigest()
    if cache.exists() and stamp.exists() and stamp.read_text().strip() == pom_hash:
        cp = cache.read_text().strip()
        if cp and all(Path(jar).exists() for jar in cp.split(os.pathsep)):
            return cp
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingToolError(
            "Maven is needed to fetch the local Kafka broker's jars: install maven "
            "(apt install maven, brew install maven)"
        )
    kafka_dir.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:build-classpath"]
    proc = subprocess.run(
        [*cmd, f"-Dmdep.outputFile={cache}"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not cache.exists():
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln]
        raise BrokerUnavailable(
            f"Maven could not resolve the Kafka jars of {pom} (is Maven Central reachable?): "
            + (errors[0] if errors else f"exit code {proc.returncode}")
        )
    stamp.write_text(pom_hash)
    return cache.read_text().strip()


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
    java = _java()
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


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    hint = "install openjdk-17-jre-headless (apt) or set JAVA_HOME"
    if not java or not Path(java).exists():
        raise MissingToolError(f"Java 17+ is needed for the local Kafka broker: {hint}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    major = parse_java_major(out.stderr + out.stdout)
    if major is None or major < 17:
        raise MissingToolError(
            f"Java 17+ is needed for the local Kafka broker (found {major}): {hint}"
        )
    return java


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
