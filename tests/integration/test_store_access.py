"""The worker's store endpoints against hostile neighbours (S12), over real HTTP to a real worker.

Refused: a cross-site `text/plain` POST (what any web page can send), a request without the
token or with a wrong one, a DNS-rebinding `Host`, a foreign `Origin`, SQL that reaches files
or other databases (read-only or not), and a read-only query past its time limit. Served: the
CLI (`streamlearn query`), which reads the token file.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamlearn.foundation.errors import StoreUnavailable
from streamlearn.foundation.settings import Settings, settings_env
from streamlearn.foundation.store.access import TOKEN_HEADER, worker_store
from streamlearn.tools.processes import WorkerProcess

SLOW = (
    "SELECT count() FROM (SELECT arrayJoin(range(3000)) AS a) AS x, "
    "(SELECT arrayJoin(range(3000)) AS b) AS y, (SELECT arrayJoin(range(3000)) AS c) AS z "
    "WHERE cityHash64(a, b, c) % 7 = 1"
)
MODELS_EXISTS = (
    "SELECT count() FROM system.tables WHERE database = 'streamlearn' AND name = 'models'"
)


def post(port: int, path: str, payload: dict, headers: dict[str, str]) -> tuple[int, str]:
    """A raw HTTP POST with exactly these headers (Host included), as any local client may send."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(payload).encode(), headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def cli_query(settings: Settings, sql: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "streamlearn", "query", "--format", "csv", sql],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.timeout(240)
def test_the_store_port_refuses_strangers_and_serves_the_cli(
    settings: Settings, tmp_path: Path
) -> None:
    s = settings.with_overrides(query_max_execution_s=1.0)
    port = s.web_port
    with WorkerProcess(s, tmp_path / "worker.log"):
        token_path = s.state_dir / "worker.token"
        assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
        token = token_path.read_text().strip()
        good = {
            "Host": f"127.0.0.1:{port}",
            "Content-Type": "application/json",
            TOKEN_HEADER: token,
        }
        drop = {"sql": "DROP TABLE streamlearn.models"}

        # What a web page can make a browser send: text/plain, its own Origin, no token.
        browser = {
            "Host": f"127.0.0.1:{port}",
            "Content-Type": "text/plain",
            "Origin": "https://evil.example",
        }
        assert post(port, "/store/command/", drop, browser)[0] in (401, 403, 415)
        # Each check alone, everything else right.
        refusals = {
            "no token": ({**good, TOKEN_HEADER: ""}, 401),
            "wrong token": ({**good, TOKEN_HEADER: "guess"}, 401),
            "DNS rebinding": ({**good, "Host": f"evil.example:{port}"}, 403),
            "foreign Origin": ({**good, "Origin": "https://evil.example"}, 403),
            "text/plain": ({**good, "Content-Type": "text/plain"}, 415),
        }
        for what, (headers, code) in refusals.items():
            for path in ("/store/command/", "/store/query/", "/store/insert/"):
                got, body = post(port, path, drop, headers)
                assert got == code, (what, path, got, body)

        # With the token: SQL that reaches outside the database, read-only or not.
        outfile = tmp_path / "written-by-sql.csv"
        outside = {
            "file()": "SELECT * FROM file('/etc/passwd', 'LineAsString')",
            "system.processes": "SELECT query FROM system.processes",
            "INTO OUTFILE": f"SELECT 1 INTO OUTFILE '{outfile}'",
            "INSERT INTO FUNCTION": f"INSERT INTO FUNCTION file('{outfile}', 'CSV') SELECT 1",
            "DROP": "DROP TABLE streamlearn.models",
        }
        for what, sql in outside.items():
            for path, readonly in (("/store/query/", True), ("/store/command/", False)):
                got, body = post(port, path, {"sql": sql, "readonly": readonly}, good)
                assert got == 403 and "SQL policy" in body, (what, path, got, body)
        assert not outfile.exists()
        store = worker_store(s, timeout=60)
        assert store.query_rows(MODELS_EXISTS)[1] == [(1,)]

        # A read-only query past query_max_execution_s is cancelled; the store goes on.
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"TIMEOUT_EXCEEDED|Timeout exceeded"):
            worker_store(s, readonly=True, timeout=60).query_rows(SLOW)
        assert time.monotonic() - started < 15

        # The CLI reads the token and gets its answer; its refusals are one clear line.
        ok = cli_query(s, "SELECT count() AS n FROM streamlearn.models")
        assert ok.returncode == 0 and ok.stdout.splitlines() == ["n", "0"], ok.stderr
        refused = cli_query(s, "SELECT * FROM file('/etc/passwd', 'LineAsString')")
        lines = [ln for ln in refused.stderr.splitlines() if ln.strip()]
        assert refused.returncode != 0 and len(lines) == 1, refused.stderr
        assert "reaches only the streamlearn database" in lines[0] and "file()" in lines[0]
