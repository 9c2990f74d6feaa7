"""Operations against a real worker on the real broker: a Prometheus scrape of /metrics during a
run (parsed with prometheus_client's own parser: lag, the latency histogram, counters), /health
and /ready, the local-only endpoints from a remote peer, JSON log lines, and the replication
factor and min.insync.replicas of every topic created (Faust's changelog included)."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from confluent_kafka.admin import ConfigResource, ConfigSource
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from streamlearn.foundation.errors import ConfigError
from streamlearn.foundation.kafka import admin, ensure_topics
from streamlearn.foundation.settings import TOPICS, Settings
from streamlearn.schemas import Serde
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import generate_batch
from tests.conftest import free_port
from tests.integration.kafka_helpers import produce, shift_to, wait_until

ROOT = Path(__file__).resolve().parents[2]
TXN = Serde("Transaction")
SENT = 400
GARBAGE = 3


@dataclass
class Run:
    settings: Settings
    worker: WorkerProcess
    log: Path

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.settings.web_port}{path}"


def get(url: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(run: Run) -> dict[str, list[Sample]]:
    """One Prometheus scrape, parsed by prometheus_client's parser: family -> samples."""
    status, body = get(run.url("/metrics"))
    assert status == 200
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def worker_settings(kafka_settings: Settings, state: Path, **changes: Any) -> Settings:
    return kafka_settings.with_overrides(
        topic_prefix=f"t{uuid4().hex[:8]}-",
        state_dir=state / "state",
        clickhouse_url=f"chdb://{state}/ch",
        partitions=2,
        web_port=free_port(),
        **changes,
    )


@pytest.fixture(scope="module")
def run(kafka_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """A worker bound to 0.0.0.0 with JSON logs; SENT transactions and GARBAGE undecodable
    messages scored, then left running for the tests to scrape."""
    state = tmp_path_factory.mktemp("ops")
    settings = worker_settings(kafka_settings, state, web_bind="0.0.0.0", log_format="json")
    log = state / "worker.log"
    worker = WorkerProcess(settings, log).start()
    try:
        now = int(time.time() * 1000)
        txns = shift_to([t for t, _ in generate_batch(SENT, seed=12, cards=300)], now - 1000)
        messages = [(t["card_id"].encode(), TXN.encode(t)) for t in txns]
        messages += [(b"junk", b"not avro at all")] * GARBAGE
        produce(settings, settings.topic("transactions"), messages)
        worker.wait_for("predictions", SENT, timeout=90)
        yield Run(settings, worker, log)
    finally:
        worker.stop(timeout=30)


def test_a_scrape_parses_and_shows_lag_and_the_latency_histogram(run: Run) -> None:
    def caught_up() -> dict[str, list[Sample]] | None:
        families = scrape(run)
        lag = [
            s
            for s in families["streamlearn_consumer_lag"]
            if s.labels["topic"].endswith("transactions")
        ]
        return families if lag and sum(s.value for s in lag) == 0 else None

    families = wait_until(caught_up, timeout=30, what="transactions lag 0 on /metrics")
    lags = families["streamlearn_consumer_lag"]
    topics = {run.settings.topic("transactions"), run.settings.topic("outcomes")}
    assert {(s.labels["topic"], s.labels["partition"]) for s in lags} == {
        (t, str(p)) for t in topics for p in range(run.settings.partitions)
    }
    highwater = families["streamlearn_consumer_highwater"]
    assert sum(s.value for s in highwater if s.labels["topic"] in topics) == SENT + GARBAGE

    latency = {
        s.name + s.labels.get("le", ""): s.value
        for s in families["streamlearn_score_latency_seconds"]
    }
    assert latency["streamlearn_score_latency_seconds_count"] == SENT
    assert latency["streamlearn_score_latency_seconds_bucket+Inf"] == SENT
    buckets = [
        s.value for s in families["streamlearn_score_latency_seconds"] if s.name.endswith("_bucket")
    ]
    assert buckets == sorted(buckets)  # cumulative
    assert 0 < latency["streamlearn_score_latency_seconds_sum"] < SENT * 60

    def value(family: str, **labels: str) -> float:
        matching = [s.value for s in families[family] if labels.items() <= s.labels.items()]
        assert len(matching) == 1, (family, labels, families[family])
        return matching[0]

    assert (
        value(
            "streamlearn_predictions",
        )
        == SENT
    )
    assert value("streamlearn_dead_letters", stage="decode") == GARBAGE
    assert value("streamlearn_model_info", version="none") == 1
    assert value("streamlearn_assigned_partitions") == 2 * run.settings.partitions
    assert value("streamlearn_store_unavailable") == 0
    assert value("streamlearn_learner_outcomes", result="learned") == 0
    assert "process_cpu_seconds" in families


def test_ready_and_health_say_why_in_json(run: Run) -> None:
    status, body = get(run.url("/ready"))
    ready = json.loads(body)
    assert (status, ready["ready"], ready["reasons"]) == (200, True, [])
    assert ready["store"] == "writable" and ready["model_version"] == "none"
    assert set(ready["partitions"]) == {
        f"{run.settings.topic('transactions')}[{p}]" for p in range(run.settings.partitions)
    }
    status, body = get(run.url("/health"))
    health = json.loads(body)
    assert status == 200 and health["alive"] is True and health["uptime_s"] > 0


def outward_address() -> str | None:
    """This machine's address on its outward interface (no packet is sent), if not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") else address


def test_bound_to_all_addresses_status_and_store_stay_local_only(run: Run) -> None:
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to come from")
    status, _ = get(run.url("/metrics", address))
    assert status == 200  # what the bind is for
    assert get(run.url("/ready", address))[0] == 200
    status, body = get(run.url("/status/", address))
    assert (status, b"local-only" in body) == (403, True)
    # Even naming the loopback Host, with the token the worker wrote: the peer decides.
    token = (run.settings.state_dir / "worker.token").read_text().strip()
    port = run.settings.web_port
    request = urllib.request.Request(
        run.url("/store/query/", address),
        data=b'{"sql": "SELECT 1", "readonly": true}',
        headers={
            "Host": f"127.0.0.1:{port}",
            "Content-Type": "application/json",
            "X-Streamlearn-Token": token,
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    # Locally /status still answers, and a foreign Host (DNS rebinding) is refused.
    assert get(run.url("/status/"))[0] == 200
    assert get(run.url("/status/"), Host=f"evil.example:{port}")[0] == 403


def test_every_log_line_is_one_json_object(run: Run) -> None:
    # At the default level (warning): the start banner and the first dead letter of a reason.
    records = [json.loads(line) for line in run.log.read_text().splitlines()]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["message"].startswith("streamlearn worker ") for r in records)
    assert any("C3 01 marker" in r["message"] for r in records)


def test_created_topics_and_the_changelog_carry_replication_and_min_isr(run: Run) -> None:
    settings = run.settings
    changelog = f"{settings.topic_prefix}streamlearn-features-changelog"
    names = [settings.topic(t) for t in TOPICS] + [changelog]
    client = admin(settings)
    metadata = client.list_topics(timeout=10).topics
    for name in names:
        assert name in metadata, name
        assert all(len(p.replicas) == 1 for p in metadata[name].partitions.values())
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
    for resource, future in client.describe_configs(resources).items():
        entry = future.result(timeout=10)["min.insync.replicas"]
        # Set on the topic itself, not the broker's default that happens to be 1 as well.
        assert (entry.value, entry.source) == ("1", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), (
            resource
        )


def test_the_dashboard_charts_only_metrics_the_worker_exposes(run: Run) -> None:
    dashboard = json.loads((ROOT / "compose" / "grafana" / "streamlearn.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"streamlearn_[a-z_]+", e)}
    # A family is exposed (HELP, TYPE) before it has a sample: drift events, inference by model.
    families = set(scrape(run))
    unknown = {m for m in used if re.sub(r"_(total|bucket|count|sum)$", "", m) not in families}
    assert used and not unknown, unknown


def test_metrics_off_leaves_health_and_ready(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = worker_settings(kafka_settings, tmp_path, metrics_enabled=False)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        base = f"http://127.0.0.1:{settings.web_port}"
        assert get(base + "/metrics")[0] == 404
        assert get(base + "/health")[0] == 200
        wait_until(lambda: get(base + "/ready")[0] == 200, timeout=30, what="/ready 200")
        assert worker.status()["model_version"] == "none"


def test_a_replication_factor_the_cluster_cannot_hold_is_one_clear_line(
    kafka_settings: Settings,
) -> None:
    settings = kafka_settings.with_overrides(
        topic_prefix=f"t{uuid4().hex[:8]}-", topic_replication_factor=3
    )
    with pytest.raises(ConfigError, match="replication factor 3") as refused:
        ensure_topics(settings, timeout=20)
    assert "\n" not in str(refused.value)
    assert "only 1 broker" in str(refused.value)
