"""compose/: per-replica worker state and ids, health checks on /ready, `retrain --watch`, the
Prometheus scrape and the Grafana provisioning (files read as Docker and Grafana would; the
dashboard's metrics are checked against a live worker in tests/integration/test_operations.py).
Where the Docker client has compose, `docker compose config` validates the file as well."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


def load(name: str) -> Any:
    return yaml.safe_load((COMPOSE / name).read_text())


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return load("docker-compose.yml")


def test_each_worker_replica_has_its_own_state_and_a_stable_id(stack: dict[str, Any]) -> None:
    worker = stack["services"]["worker"]
    state_dir = worker["environment"]["STREAMLEARN_STATE_DIR"]
    # An anonymous volume (no source): one per container, never shared by replicas.
    assert worker["volumes"] == [state_dir]
    assert "worker-state" not in stack.get("volumes", {})
    command = " ".join(worker["command"])
    # The id is kept in the state it names (the learner checkpoint is filed under it).
    assert 'id_file="$$STREAMLEARN_STATE_DIR/worker-id"' in command
    assert 'STREAMLEARN_WORKER_ID="$$(cat "$$id_file")" exec streamlearn worker' in command
    assert "container_name" not in worker  # --scale needs generated names


def test_workers_listen_for_prometheus_and_are_checked_on_ready(stack: dict[str, Any]) -> None:
    worker = stack["services"]["worker"]
    assert worker["environment"]["STREAMLEARN_WEB_BIND"] == "0.0.0.0"
    check = worker["healthcheck"]
    assert check["test"][0] == "CMD"
    assert "http://127.0.0.1:6066/ready" in check["test"][-1]
    assert "6066" in [str(p) for p in worker["expose"]]


def test_the_retrain_service_watches_its_triggers(stack: dict[str, Any]) -> None:
    command = stack["services"]["retrain"]["command"]
    assert command[:3] == ["streamlearn", "retrain", "--watch"]


def test_replication_settings_reach_every_streamlearn_service(stack: dict[str, Any]) -> None:
    for name in ("worker", "retrain"):
        env = stack["services"][name]["environment"]
        assert env["STREAMLEARN_TOPIC_REPLICATION_FACTOR"].endswith(":-1}")
        assert env["STREAMLEARN_TOPIC_MIN_INSYNC_REPLICAS"].endswith(":-1}")


def test_prometheus_scrapes_every_worker_replica(stack: dict[str, Any]) -> None:
    prometheus = stack["services"]["prometheus"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    (job,) = load("prometheus.yml")["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (dns,) = job["dns_sd_configs"]
    assert (dns["names"], dns["type"], dns["port"]) == (["worker"], "A", 6066)


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard(
    stack: dict[str, Any],
) -> None:
    mounts = {v.split(":")[1]: v.split(":")[0] for v in stack["services"]["grafana"]["volumes"]}
    for target, source in mounts.items():
        if source.startswith("./"):
            assert (COMPOSE / source).exists(), target
    (source,) = load("grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert (source["uid"], source["url"]) == ("prometheus", "http://prometheus:9090")
    (provider,) = load("grafana/provisioning/dashboards/streamlearn.yml")["providers"]
    assert mounts[provider["options"]["path"] + "/streamlearn.json"] == "./grafana/streamlearn.json"


def test_the_dashboard_loads_and_charts_what_on_call_needs() -> None:
    dashboard = json.loads((COMPOSE / "grafana" / "streamlearn.json").read_text())
    assert dashboard["uid"] == "streamlearn"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for needed in (
        "rate(streamlearn_predictions_total",
        "histogram_quantile(0.99, sum by (le) (rate(streamlearn_score_latency_seconds_bucket",
        "streamlearn_consumer_lag",
        "streamlearn_dead_letters_total",
        "streamlearn_learner_outcomes_total",
        "streamlearn_model_info",
    ):
        assert needed in exprs, needed
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert p["targets"] and all(t["expr"] for t in p["targets"])


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    client = _compose_client()
    if client is None:
        pytest.skip("no `docker compose` client here: the file is checked by the tests above")
    run = subprocess.run(
        [*client, "-f", str(COMPOSE / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
