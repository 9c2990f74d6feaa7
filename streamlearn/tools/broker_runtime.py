"""What the local broker runs on: a Java 17+ binary and the Kafka jars Maven resolves.

The jars' classpath is cached beside the broker's files until compose/pom.xml changes."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from streamlearn.foundation.errors import BrokerUnavailable, MissingToolError

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
POM = COMPOSE_DIR / "pom.xml"
LOG4J = COMPOSE_DIR / "log4j2.xml"


def parse_java_major(version_output: str) -> int | None:
    """17 from `openjdk version "17.0.15"`, 8 from `"1.8.0_292"`; None if unrecognised."""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


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


def find_java() -> str:
    """The java binary (JAVA_HOME first, else PATH), checked to be Java 17 or newer."""
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
