"""A local Apicurio Registry serving the Confluent Schema Registry API, without Docker.

`build` runs `compose/registry/pom.xml` once: Maven re-runs Apicurio's Quarkus build into
`<dest>/quarkus-app/`. `up` starts it in the background (in-memory storage, global
compatibility BACKWARD) and returns the base URL for confluent-kafka's SchemaRegistryClient;
`down` stops it. Its pid file and log live under `<state_dir>/registry/`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from streamlearn.foundation.errors import ConfigError, MissingToolError, RegistryUnavailable
from streamlearn.tools.broker_runtime import parse_java_major

REGISTRY_DIR = Path(__file__).resolve().parents[2] / "compose" / "registry"
BUILD_INPUTS = ("pom.xml", "settings.xml", "src/main/resources/application.properties")
CCOMPAT = "/apis/ccompat/v6"
JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m", "-Xss512k")
MARK = "-Dstreamlearn.registry.state="  # names the state dir on the java command line

# Registries started by this process, so their exit is reaped (no zombie looks alive).
_children: dict[int, subprocess.Popen[bytes]] = {}


def build(dest: Path) -> Path:
    """Build the runnable registry into dest once (again if the pom changes); its jar to run."""
    dest = dest.resolve()
    jar, stamp = dest / "quarkus-app" / "quarkus-run.jar", dest / "build.sha256"
    digest = hashlib.sha256(b"".join((REGISTRY_DIR / f).read_bytes() for f in BUILD_INPUTS))
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / "build.lock").open("w") as lock:  # a second build waits, then skips
        fcntl.flock(lock, fcntl.LOCK_EX)
        if jar.exists() and stamp.exists() and stamp.read_text().strip() == digest.hexdigest():
            return jar
        mvn = shutil.which("mvn")
        if mvn is None:
            raise MissingToolError("Maven is needed to build the local schema registry")
        _java()
        for attempt in (1, 2):  # once more from a clean dir: a half-written build is not reused
            code = _maven_package(mvn, dest, dest / "build.log")
            if code == 0 and jar.exists():
                break
            if attempt == 1:
                shutil.rmtree(dest / "quarkus-app", ignore_errors=True)
        else:
            raise RegistryUnavailable(
                "Maven could not build the local schema registry (is Maven Central reachable?): "
                f"{_build_failure(dest / 'build.log', code)}; full log: {dest / 'build.log'}"
            )
        stamp.write_text(digest.hexdigest() + "\n")
    return jar


def _maven_package(mvn: str, dest: Path, log_path: Path) -> int:
    """Run the registry project's `package` into dest, its whole output to log_path."""
    cmd = [mvn, "-B", "--no-transfer-progress", "-s", str(REGISTRY_DIR / "settings.xml")]
    cmd += ["-f", str(REGISTRY_DIR / "pom.xml"), "package", f"-Dregistry.dir={dest}"]
    cmd += ["-Dquarkus.build.skip=false"]  # a skip set in the caller's Maven config must not win
    # Apicurio's own jar sets %prod.quarkus.package.type=legacy-jar; which application.properties
    # wins depends on classpath order, so a system property (higher ordinal) settles it.
    cmd += ["-Dquarkus.package.type=fast-jar"]
    with log_path.open("w") as log:
        return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def _build_failure(log_path: Path, code: int) -> str:
    """The first ERROR line of a failed build, or what Maven said of the Quarkus step."""
    lines = log_path.read_text(errors="replace").splitlines()
    errors = [ln.strip() for ln in lines if "ERROR" in ln]
    if errors:
        return errors[0]
    quarkus = [ln.strip() for ln in lines if "quarkus" in ln.lower() or "BUILD" in ln]
    return f"exit code {code}, no quarkus-app/quarkus-run.jar; " + " | ".join(quarkus[-3:])


def up(dest: Path, port: int, state_dir: Path, wait_s: float = 90) -> str:
    """Start the registry on 127.0.0.1:port unless it runs; its Confluent-compatible base URL."""
    url = f"http://127.0.0.1:{port}{CCOMPAT}"
    rdir = state_dir.resolve() / "registry"
    rdir.mkdir(parents=True, exist_ok=True)
    with (rdir / "up.lock").open("w") as lock:  # one `up` at a time per state dir
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = _running_pid(rdir)  # ours: running, or still starting
        if pid is not None and (running_on := _port_of(pid)) != port:
            raise ConfigError(
                f"this state dir's registry already runs on port {running_on}: "
                "stop it (registry_local.down) first to move it"
            )
        if pid is None and _request("GET", url + "/subjects") is None:  # else someone else's
            if _port_open(port):
                raise RegistryUnavailable(f"port {port} is taken by something else: pick another")
            pid = _start(build(dest), rdir, port)
        _wait_ready(url, rdir, pid, wait_s)
        answer = _request("PUT", url + "/config", {"compatibility": "BACKWARD"})
        if answer is None or answer.get("compatibility") != "BACKWARD":
            raise RegistryUnavailable(f"the registry at {url} refused compatibility BACKWARD")
    return url


def down(state_dir: Path) -> bool:
    """Stop the registry recorded under state_dir (SIGTERM, SIGKILL after 15 s); was one up?"""
    rdir = state_dir.resolve() / "registry"
    pid = _running_pid(rdir)
    if pid is not None:
        _stop(rdir, pid, grace_s=15)
    (rdir / "registry.pid").unlink(missing_ok=True)
    return pid is not None


def _start(jar: Path, rdir: Path, port: int) -> int:
    """Launch java detached, in its own session (process group); its pid, also in registry.pid."""
    cmd = [_java(), *JVM_FLAGS, "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={port}"]
    cmd += ["-Dquarkus.package.type=fast-jar", f"{MARK}{rdir}", "-jar", str(jar)]  # as built
    with (rdir / "registry.log").open("wb") as log:
        child = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=rdir, start_new_session=True
        )
    _children[child.pid] = child
    (rdir / "registry.pid").write_text(f"{child.pid}\n")
    return child.pid


def _wait_ready(url: str, rdir: Path, pid: int | None, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if pid is not None and _running_pid(rdir) != pid:
            raise RegistryUnavailable(f"the local schema registry exited: {_log_tail(rdir)}")
        if _request("GET", url + "/subjects") is not None:
            return
        time.sleep(0.25)
    if pid is not None:
        down(rdir.parent)
    raise RegistryUnavailable(f"the registry was not ready in {wait_s:.0f}s: {_log_tail(rdir)}")


def _request(method: str, url: str, body: object = None) -> dict[str, object] | None:
    """The JSON a request answers with (a list as {"value": ...}); None on any failure."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            answer = json.loads(resp.read() or b"null")
    except (OSError, ValueError):  # refused, HTTP errors, timeouts, not JSON
        return None
    return answer if isinstance(answer, dict) else {"value": answer}


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java") or "java"
    out = shutil.which(java) and subprocess.run([java, "-version"], capture_output=True, text=True)
    major = parse_java_major(out.stderr + out.stdout) if out else None
    if major is None or major < 17:
        raise MissingToolError(
            f"Java 17+ is needed for the local schema registry (found {major}): "
            "install openjdk-17-jre-headless or set JAVA_HOME"
        )
    return java


def _running_pid(rdir: Path) -> int | None:
    """The pid in registry.pid if that process is alive and is this state dir's registry."""
    try:
        pid = int((rdir / "registry.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    child = _children.get(pid)
    if child is not None:
        return pid if child.poll() is None else None
    return pid if f"{MARK}{rdir} " in _cmdline(pid) else None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):  # no /proc (macOS), or gone
        ps = ["ps", "-ww", "-o", "command=", "-p", str(pid)]
        return subprocess.run(ps, capture_output=True, text=True, check=False).stdout + " "


def _port_of(pid: int) -> int | None:
    m = re.search(r"-Dquarkus\.http\.port=(\d+) ", _cmdline(pid))
    return int(m.group(1)) if m else None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(rdir: Path, pid: int, grace_s: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)  # its own process group: started with start_new_session
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _running_pid(rdir) != pid:
                return
            time.sleep(0.1)


def _log_tail(rdir: Path, lines: int = 5) -> str:
    log = rdir / "registry.log"
    text = log.read_text(errors="replace").strip() if log.exists() else ""
    return " | ".join(ln.strip() for ln in text.splitlines()[-lines:]) or f"no output in {log}"
