"""The worker's Prometheus metrics (/metrics): read from its existing counters at scrape time.

Nothing here runs per event. A custom collector reads `WorkerStats`, the dead-letter writer,
the learners, the writer and Faust's consumer when Prometheus scrapes; the one histogram
(publish → score latency) is filled a slice at a time with numpy (`LatencyHistogram`), and
drift events are counted when the 5 s timer hands them to the drift reporter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streamlearn.streams.health import gather_facts, partition_lags, readiness

if TYPE_CHECKING:
    from streamlearn.streams.app import Running
    from streamlearn.streams.parts import WorkerParts

# Upper bounds (seconds) of the latency buckets: 1 ms to a minute (a replayed backlog is old).
LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class LatencyHistogram:
    """Cumulative bucket counts of publish → score latencies, observed a slice at a time.

    prometheus_client's Histogram.observe takes one value (and a lock) per call: per event
    that is what the scoring path must not pay. Here one numpy call bins a whole slice.
    """

    def __init__(self, bounds_s: Iterable[float] = LATENCY_BUCKETS_S) -> None:
        self.bounds_s = tuple(bounds_s)
        self._bounds_ms = np.asarray(self.bounds_s) * 1000.0
        self.counts = np.zeros(len(self.bounds_s) + 1, dtype=np.int64)  # the last: +Inf
        self.sum_s = 0.0

    def observe_ms(self, latencies_ms: np.ndarray) -> None:
        """Add a slice's latencies (ms). A producer clock ahead of ours counts as 0."""
        values = np.maximum(np.asarray(latencies_ms, dtype=np.float64), 0.0)
        # side="left": a value equal to a bound falls in that bound's bucket (le is inclusive).
        index = np.searchsorted(self._bounds_ms, values, side="left")
        self.counts += np.bincount(index, minlength=len(self.counts))
        self.sum_s += float(values.sum()) / 1000.0

    def buckets(self) -> list[tuple[str, float]]:
        """(le, cumulative count) pairs, +Inf last, as Prometheus exposes them."""
        cumulative = np.cumsum(self.counts).tolist()
        labels = [_le(b) for b in self.bounds_s] + ["+Inf"]
        return list(zip(labels, cumulative, strict=True))


def _le(bound: float) -> str:
    return repr(float(bound))


class DriftCounts:
    """Drift events reported since start, by kind (data, score, concept)."""

    def __init__(self) -> None:
        self.by_kind: dict[str, int] = {}

    def add(self, events: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
        """Count the (DriftEvent, model version) pairs the learning thread handed over; returns
        them for the drift reporter."""
        for event, _version in events:
            self.by_kind[event.kind] = self.by_kind.get(event.kind, 0) + 1
        return events


class WorkerCollector(Collector):
    """Every streamlearn_* metric, read from the worker's parts when Prometheus scrapes."""

    def __init__(
        self,
        parts: WorkerParts,
        running: Running,
        latency: LatencyHistogram,
        drift: DriftCounts,
    ) -> None:
        self.parts, self.running, self.latency, self.drift = parts, running, latency, drift

    def collect(self) -> Iterator[Metric]:
        yield from self._scoring()
        yield from self._consumer()
        yield from self._model()
        yield from self._learning()
        yield from self._store()

    def _scoring(self) -> Iterator[Metric]:
        s, dlq = self.parts.stats, self.parts.dlq
        yield _counter(
            "predictions", "Transactions scored, one prediction published each.", s.predictions
        )
        yield _counter(
            "transactions_stored",
            "Scored transactions made durable (rows in ClickHouse, changelog) and acked.",
            self.running.writer.transactions,
        )
        yield _counter(
            "transactions_replayed",
            "Redelivered transactions skipped: their card's state already holds them.",
            s.replayed_transactions,
        )
        yield _counter("score_batches", "Slices scored (up to batch_size events each).", s.batches)
        yield _counter("outcomes", "Outcome messages received.", s.outcomes)
        yield _labelled(
            CounterMetricFamily,
            "dead_letters",
            "Messages sent to dead-letters, by stage (decode, validate, model, ...).",
            "stage",
            dlq.counts,
        )
        yield _counter(
            "dead_letters_truncated",
            "Dead letters the topic refused whole, sent again in their bounded form.",
            dlq.truncated,
        )
        histogram = HistogramMetricFamily(
            "streamlearn_score_latency_seconds",
            "From the transaction's Kafka timestamp (publish) to its score.",
        )
        histogram.add_metric([], self.latency.buckets(), self.latency.sum_s)
        yield histogram

    def _consumer(self) -> Iterator[Metric]:
        settings = self.parts.settings
        topics = (settings.topic("transactions"), settings.topic("outcomes"))
        lags = partition_lags(self.running.app.consumer, topics)
        labels = ["topic", "partition"]
        families = {
            "lag": GaugeMetricFamily(
                "streamlearn_consumer_lag",
                "Events on an assigned partition this worker has not taken yet "
                "(highwater - position).",
                labels=labels,
            ),
            "highwater": GaugeMetricFamily(
                "streamlearn_consumer_highwater", "The partition's end offset.", labels=labels
            ),
            "committed": GaugeMetricFamily(
                "streamlearn_consumer_committed_offset",
                "The group's committed offset (committed lag = highwater - committed).",
                labels=labels,
            ),
        }
        for p in lags:
            key = [p.topic, str(p.partition)]
            for name, value in (
                ("lag", p.lag),
                ("highwater", p.highwater),
                ("committed", p.committed),
            ):
                if value is not None:
                    families[name].add_metric(key, value)
        yield from families.values()
        yield _gauge(
            "assigned_partitions", "Partitions of transactions and outcomes assigned.", len(lags)
        )
        ready, _ = readiness(gather_facts(self.parts, self.running), settings.ready_max_lag)
        yield _gauge(
            "ready", "1 when /ready answers 200 (assigned, caught up, store writable).", int(ready)
        )

    def _model(self) -> Iterator[Metric]:
        champion = self.parts.champion
        current, shadow = champion.slots()
        info = InfoMetricFamily(
            "streamlearn_model", "The model served ('none' before any) and the shadow, if any."
        )
        info.add_metric(
            [],
            {
                "version": current.version if current else "none",
                "shadow_version": shadow.version if shadow else "",
            },
        )
        yield info
        yield _counter("model_swaps", "Model releases put in service since start.", champion.swaps)
        yield _counter(
            "models_refused", "Model releases refused (dead-lettered).", champion.refused
        )
        stats = self.parts.stats
        yield _labelled(
            CounterMetricFamily,
            "inference_cpu_seconds",
            "CPU seconds spent scoring with LightGBM, by model version (shadows too).",
            "model_version",
            stats.inference_cpu_s,
        )
        yield _labelled(
            CounterMetricFamily,
            "inference_rows",
            "Rows scored by LightGBM, by model version.",
            "model_version",
            stats.inference_count,
        )

    def _learning(self) -> Iterator[Metric]:
        learning, join = self.parts.learning, self.parts.label_join
        counters = learning.learners.counters  # plain ints, read across threads as they are
        results = {
            "learned": counters["learned"],
            "duplicate": counters["duplicate"],
            "conflicting": counters["conflicting"],
            "early": join.counters["early_outcomes"],
            "expired": join.counters["expired_outcomes"],
            "unknown": join.counters["unknown_outcomes"],
        }
        yield _labelled(
            CounterMetricFamily,
            "learner_outcomes",
            "Outcomes by what the learners did with them (learned; duplicate and conflicting "
            "are not relearned; early waited for their transaction; expired and unknown are "
            "stored, not learned). Restored from the learner checkpoint at start.",
            "result",
            results,
        )
        yield _gauge("outcomes_parked", "Outcomes waiting for their transaction.", len(join.early))
        yield _gauge(
            "learning_backlog",
            "Labels handed to the learning thread, not learned yet.",
            learning.backlog,
        )
        yield _gauge(
            "outcomes_awaiting_checkpoint",
            "Outcomes learned, acked once a learner checkpoint covers them.",
            len(self.parts.held),
        )
        yield _labelled(
            CounterMetricFamily,
            "drift_events",
            "Drift events reported, by kind.",
            "kind",
            self.drift.by_kind,
        )

    def _store(self) -> Iterator[Metric]:
        sink, writer = self.parts.sink, self.running.writer
        yield _gauge(
            "store_pending_rows", "Scored rows not yet in ClickHouse.", writer.pending_rows
        )
        yield _gauge(
            "store_unavailable",
            "1 while the store refuses writes (back-pressure).",
            int(sink.down_since is not None),
        )
        yield _counter("store_failures", "Failed store attempts since start.", sink.failures)
        yield _gauge(
            "scoring_blocked",
            "Scoring actors waiting for the writer (back-pressure).",
            writer.blocked,
        )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"streamlearn_{name}", doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"streamlearn_{name}", doc, value=value)


def _labelled(kind: type, name: str, doc: str, label: str, values: dict[str, Any]) -> Metric:
    family = kind(f"streamlearn_{name}", doc, labels=[label])
    # dict() copies in one step under the GIL: the model feed's thread may add a dead-letter
    # stage while this iterates.
    for key, value in sorted(dict(values).items()):
        family.add_metric([str(key)], value)
    return family


class WorkerMetrics:
    """The registry /metrics renders: the worker's collector plus the process's own (CPU,
    memory, open files, Python version)."""

    def __init__(self, parts: WorkerParts, running: Running) -> None:
        self.latency = LatencyHistogram()
        self.registry = CollectorRegistry()
        self.registry.register(WorkerCollector(parts, running, self.latency, running.drift))
        ProcessCollector(registry=self.registry)
        self.registry.register(PLATFORM_COLLECTOR)

    content_type = CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        return generate_latest(self.registry)


def worker_metrics(parts: WorkerParts, running: Running) -> WorkerMetrics | None:
    """The worker's metrics, its scorer filling their latency histogram; None when
    STREAMLEARN_METRICS_ENABLED is false (the scoring path then skips the histogram)."""
    if not parts.settings.metrics_enabled:
        return None
    metrics = WorkerMetrics(parts, running)
    running.scorer.latency_histogram = metrics.latency
    return metrics
