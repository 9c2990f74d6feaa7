"""TLS material of the local broker: a private CA and a broker keystore, made with openssl.

Made once per state dir at `up` under `<state dir>/kafka/tls/`: `ca.pem` is what clients
trust (STREAMLEARN_KAFKA_SSL_CAFILE), `broker.p12` the broker's key and certificate (for
127.0.0.1 and localhost) under a random password kept in `keystore.password` (mode 0600).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streamlearn.foundation.errors import BrokerUnavailable, MissingToolError

DAYS = "825"
SAN = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"


@dataclass(frozen=True)
class BrokerTls:
    """Where the broker's TLS files are; the password is read from its file when needed."""

    ca: Path
    keystore: Path
    password_file: Path

    def password(self) -> str:
        return self.password_file.read_text().strip()


def tls_dir(kafka_dir: Path) -> Path:
    return kafka_dir / "tls"


def ensure_broker_tls(kafka_dir: Path) -> BrokerTls:
    """The broker's CA and keystore, made on first use and reused afterwards."""
    d = tls_dir(kafka_dir)
    files = BrokerTls(d / "ca.pem", d / "broker.p12", d / "keystore.password")
    if all(p.exists() for p in (files.ca, files.keystore, files.password_file)):
        return files
    openssl = shutil.which("openssl")
    if openssl is None:
        raise MissingToolError("openssl is needed to make the local broker's TLS certificates")
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    password = secrets.token_urlsafe(24)
    files.password_file.touch(mode=0o600)
    files.password_file.write_text(password)
    key, ca_key, csr, cert, ext = (
        d / "broker.key",
        d / "ca.key",
        d / "broker.csr",
        d / "broker.pem",
        d / "san.ext",
    )
    ext.write_text(SAN)
    # The password goes through the environment, never on a command line (`ps` shows those).
    env = {**os.environ, "STREAMLEARN_TLS_PASSWORD": password}
    steps = [
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
         "-out", files.ca, "-days", DAYS, "-subj", "/CN=streamlearn local CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", csr, "-CA", files.ca, "-CAkey", ca_key,
         "-CAcreateserial", "-out", cert, "-days", DAYS, "-extfile", ext],
        [openssl, "pkcs12", "-export", "-in", cert, "-inkey", key, "-certfile", files.ca,
         "-name", "broker", "-out", files.keystore, "-passout", "env:STREAMLEARN_TLS_PASSWORD"],
    ]  # fmt: skip
    for step in steps:
        proc = subprocess.run(
            [str(a) for a in step], capture_output=True, text=True, env=env, check=False
        )
        if proc.returncode != 0:
            files.password_file.unlink(missing_ok=True)
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            raise BrokerUnavailable(f"making the local broker's TLS files failed: {last}")
    for private in (key, ca_key, files.keystore):
        private.chmod(0o600)
    csr.unlink(missing_ok=True)
    return files
