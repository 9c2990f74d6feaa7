"""`python -m tests.perf.faust_sensor_worker`: the real worker with Faust's own Prometheus
sensor installed (on /faust-metrics), for tests/perf/metrics_overhead.py's comparison."""

from __future__ import annotations

from typing import Any

from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from streamlearn.foundation.settings import Settings
from streamlearn.streams import app as app_module
from streamlearn.streams.worker import run_worker

_new_app = app_module._new_app


def _with_sensor(settings: Settings) -> Any:
    app = _new_app(settings)
    # Faust's PrometheusMonitor replaces app.monitor: every message, event, commit and send
    # updates its counters and histograms.
    setup_prometheus_sensors(app, pattern="/faust-metrics", registry=CollectorRegistry())
    return app


if __name__ == "__main__":
    app_module._new_app = _with_sensor
    run_worker(Settings())
