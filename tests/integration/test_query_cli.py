"""`streamlearn query` and `status` against a running worker, then on the same embedded store
opened directly: every result has the same columns, types and values both ways (frames, rows
and the command's own output), `--param` binds the README's `{id:String}` query, and `status`
shows the worker group's committed offsets and lag per partition from Kafka."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from streamlearn.foundation.settings import Settings, settings_env
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.access import RemoteStore, worker_store
from streamlearn.tools.processes import WorkerProcess
from tests.integration.kafka_helpers import wait_until
from tests.integration.report_data import VERSIONS, seed

SEEDED = "'2026-03-02 00:00:00'"  # the seeded rows are older; the simulated ones are now
QUERIES = {
    "transactions": "SELECT * FROM streamlearn.transactions FINAL "
    f"WHERE scored_at < {SEEDED} ORDER BY transaction_id",
    "models": "SELECT * FROM streamlearn.models FINAL ORDER BY version",
    "online_metrics": "SELECT * FROM streamlearn.online_metrics "
    f"WHERE time < {SEEDED} ORDER BY time, worker, scorer",
    "types": "SELECT toDateTime('2026-01-02 03:04:05') + number AS dt, "
    "CAST(if(number = 0, 'b', 'a') AS Enum8('a' = 1, 'b' = 2)) AS e, "
    "map('amount', 12345.67) AS m, (number, 'x') AS pair, if(number = 0, NULL, number) AS n, "
    "toUInt32(number) AS u, toFloat32(0.1) AS f32 "
    # Not numbers(): a worker may refuse table functions from outside.
    "FROM (SELECT arrayJoin([0, 1, 2]) AS number)",
}
# The README's "which model scored a transaction" query, with its {id:String} parameter.
WHO_SCORED = """
SELECT t.transaction_id, t.event_time, t.score, t.model_version, m.status, m.trigger,
       m.metrics['holdout_auc'] AS holdout_auc, m.train_cpu_s
FROM streamlearn.transactions AS t FINAL
LEFT JOIN (SELECT * FROM streamlearn.models FINAL) AS m ON m.version = t.model_version
WHERE t.transaction_id = {id:String}
"""


def cli(settings: Settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings_env(settings), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "streamlearn", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def outputs(settings: Settings) -> dict[str, str]:
    """The command's json and csv output for every query, and the README query's."""
    out = {}
    for name, sql in QUERIES.items():
        for fmt in ("json", "csv"):
            run = cli(settings, "query", "--format", fmt, sql)
            assert run.returncode == 0, (name, run.stderr)
            out[f"{name}.{fmt}"] = run.stdout
    run = cli(settings, "query", "--format", "json", "--param", "id=t000250", "-", stdin=WHO_SCORED)
    assert run.returncode == 0, run.stderr
    out["who_scored"] = run.stdout
    return out


def results(store: Store | RemoteStore) -> dict[str, Any]:
    return {name: (store.query_df(sql), store.query_rows(sql)) for name, sql in QUERIES.items()}


def lag_of(settings: Settings) -> dict[str, Any]:
    run = cli(settings, "status", "--json")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.timeout(300)
def test_the_same_results_through_the_worker_and_directly(settings: Settings, tmp_path: Path):
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        seed(worker_store(settings), n=300)
        sent = cli(settings, "simulate", "--count", "20", "--rate", "50")
        assert sent.returncode == 0 and "sent 20 transactions" in sent.stdout, sent.stderr
        worker.wait_for("transactions", 20, timeout=60)
        # Faust commits every few seconds: wait for the group to catch up in Kafka's eyes.
        status = wait_until(
            lambda: (s := lag_of(settings))["kafka"]["lag_total"] == 0 and s,
            timeout=60,
            what="the worker group's lag to reach 0",
        )
        remote = results(worker_store(settings, readonly=True))
        through_worker = outputs(settings)
    direct_store = Store(settings.store_url, readonly=True)
    try:
        direct = results(direct_store)
    finally:
        direct_store.close()
    assert outputs(settings) == through_worker

    for name, (frame, (cols, rows)) in direct.items():
        assert len(frame), name
        pd.testing.assert_frame_equal(remote[name][0], frame, obj=name)
        assert remote[name][1][0] == cols
        assert [list(map(repr, r)) for r in remote[name][1][1]] == [
            list(map(repr, r)) for r in rows
        ], name

    types = json.loads(through_worker["types.json"])[0]
    assert types == {
        "dt": "2026-01-02T03:04:05Z",
        "e": "b",
        "m": {"amount": 12345.67},
        "pair": [0, "x"],
        "n": None,
        "u": 0,
        "f32": 0.1,
    }
    assert "12345.67" in through_worker["types.csv"] and "e+0" not in through_worker["types.csv"]
    who = json.loads(through_worker["who_scored"])
    assert [r["transaction_id"] for r in who] == ["t000250"]
    assert who[0]["model_version"] == VERSIONS[0] and who[0]["status"] == "retired"

    kafka = status["kafka"]
    assert kafka["reachable"] and kafka["consumer_group"] == f"{settings.topic_prefix}streamlearn"
    txn = [r for r in kafka["lag"] if r["topic"] == settings.topic("transactions")]
    assert len(txn) == settings.partitions
    assert sum(r["end"] for r in txn) == 20 and sum(r["committed"] or 0 for r in txn) == 20
    assert status["worker"]["transactions"] >= 20 and status["worker"]["uptime_s"] > 0
