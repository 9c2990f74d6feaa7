"""The pure parts of /metrics, /health and /ready: the slice-binned latency histogram against
prometheus_client's own, drift counts, readiness and liveness verdicts, the local-only check."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamlearn.streams.health import Facts, PartitionLag, liveness, partition_lags, readiness
from streamlearn.streams.metrics import LATENCY_BUCKETS_S, DriftCounts, LatencyHistogram
from streamlearn.streams.store_access import local_refusal, loopback_peer

PORT = 6066


def samples(text: str, family: str) -> dict[str, float]:
    """{sample name + its `le`: value} of one family in an exposition text."""
    for f in text_string_to_metric_families(text):
        if f.name == family:
            return {s.name + s.labels.get("le", ""): s.value for s in f.samples}
    raise AssertionError(f"{family} not exposed")


def test_slice_binned_histogram_matches_prometheus_client_observing_each_value() -> None:
    rng = np.random.default_rng(3)
    slices = [rng.lognormal(3, 1.5, size=n) for n in (1, 37, 500, 12)]
    slices.append(np.asarray([1.0, 2.5, 1000.0, 60_000.0, 90_000.0]))  # on bounds, past the last
    ours = LatencyHistogram()
    registry = CollectorRegistry()
    theirs = Histogram("lat_seconds", "x", buckets=LATENCY_BUCKETS_S, registry=registry)
    for ms in slices:
        ours.observe_ms(ms)
        for v in ms:
            theirs.observe(v / 1000.0)
    expected = samples(generate_latest(registry).decode(), "lat_seconds")
    got = {f"lat_seconds_bucket{le}": count for le, count in ours.buckets()}
    for key, count in got.items():
        assert count == expected[key], key
    assert ours.buckets()[-1] == ("+Inf", sum(len(s) for s in slices))
    assert ours.sum_s == pytest.approx(expected["lat_seconds_sum"])


def test_a_producer_clock_ahead_counts_as_zero_latency() -> None:
    h = LatencyHistogram()
    h.observe_ms(np.asarray([-5.0, 0.5]))
    assert h.buckets()[0] == ("0.001", 2)
    assert h.sum_s == pytest.approx(0.0005)


def test_drift_counts_by_kind() -> None:
    counts = DriftCounts()
    event = SimpleNamespace
    counts.add([(event(kind="data"), "v1"), (event(kind="data"), "v1")])
    counts.add([(event(kind="concept"), "v2")])
    counts.add([])
    assert counts.by_kind == {"data": 2, "concept": 1}


def facts(**changes: object) -> Facts:
    base: dict[str, object] = {
        "started": True,
        "stopping": False,
        "rebalancing": False,
        "recovering": False,
        "transactions": [PartitionLag("tx", 0, 120, 100, 90), PartitionLag("tx", 1, 5, 5, 5)],
        "store_down_since": None,
        "model_version": "none",
    }
    return Facts(**{**base, **changes})  # type: ignore[arg-type]


def test_ready_when_assigned_caught_up_and_the_store_writes_even_without_a_champion() -> None:
    ready, body = readiness(facts(), max_lag=20)
    assert ready
    assert body["reasons"] == []
    assert body["lag"] == 20
    assert body["partitions"] == {"tx[0]": 20, "tx[1]": 0}
    assert body["model_version"] == "none"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"started": False, "transactions": []}, "the consumer has not started"),
        ({"stopping": True}, "the worker is stopping"),
        ({"rebalancing": True}, "rebalancing"),
        ({"recovering": True}, "recovered from the changelog"),
        ({"transactions": []}, "no transactions partition is assigned"),
        ({"transactions": [PartitionLag("tx", 3, None, 7, 7)]}, "nothing fetched yet from tx[3]"),
        ({"store_down_since": 1000.0}, "the store refuses writes for 30s"),
    ],
)
def test_not_ready_says_why(changes: dict[str, object], reason: str) -> None:
    ready, body = readiness(facts(**changes), max_lag=20, now=1030.0)
    assert not ready
    assert any(reason in r for r in body["reasons"]), body["reasons"]
    assert body["ready"] is False


def test_behind_by_more_than_the_bound_is_not_ready() -> None:
    ready, body = readiness(facts(), max_lag=19)
    assert not ready
    assert body["reasons"] == ["20 events behind (more than 19, STREAMLEARN_READY_MAX_LAG)"]


def test_alive_while_it_answers_stopping_or_not() -> None:
    assert liveness(False, 100.0, now=160.0) == {"alive": True, "stopping": False, "uptime_s": 60.0}
    assert liveness(True, 100.0, now=101.0)["stopping"] is True


class _Consumer:
    """Faust's consumer as partition_lags reads it (assignment, highwater, offsets)."""

    def __init__(self, highwaters: dict[TP, int | None], handed: dict[TP, int], committed: dict):
        self.highwaters, self._next_offset, self._committed_offset = highwaters, handed, committed

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int | None:
        value = self.highwaters[tp]
        if value == -1:
            raise AssertionError("Partition is not assigned")
        return value


def test_partition_lags_position_is_what_was_handed_out_else_committed_else_zero() -> None:
    a, b, c, d, other = TP("tx", 0), TP("tx", 1), TP("tx", 2), TP("tx", 3), TP("out", 0)
    consumer = _Consumer({a: 100, b: 50, c: 9, d: -1, other: 7}, {a: 80}, {a: 60, b: 50})
    lags = {p.partition: p for p in partition_lags(consumer, ["tx"])}
    assert sorted(lags) == [0, 1, 2, 3]
    assert (lags[0].position, lags[0].committed, lags[0].lag) == (80, 60, 20)
    assert (lags[1].position, lags[1].lag) == (50, 0)
    assert (lags[2].position, lags[2].lag) == (0, 9)  # never committed: the whole log is ahead
    assert lags[3].lag is None  # revoked between assignment() and highwater()


def test_partition_lags_before_the_consumer_starts() -> None:
    class NotStarted:
        def assignment(self) -> set[TP]:
            raise ConsumerNotStarted("not yet")

    assert partition_lags(NotStarted(), ["tx"]) == []


@pytest.mark.parametrize(
    ("peer", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.2", False),
        ("10.0.0.1", False),
        ("fd00::2", False),
        ("::ffff:10.0.0.1", False),
        (None, False),
        ("", False),
        ("localhost", False),  # a name is not a peer address
    ],
)
def test_loopback_peer(peer: str | None, local: bool) -> None:
    assert loopback_peer(peer) is local


def test_local_refusal_checks_the_peer_first_then_host_and_origin() -> None:
    good = {"Host": f"127.0.0.1:{PORT}"}
    assert local_refusal(good, PORT, "127.0.0.1") is None
    refused = local_refusal(good, PORT, "192.0.2.2")
    assert refused is not None and refused[0] == 403 and "192.0.2.2" in refused[1]
    assert local_refusal({"Host": f"worker-1:{PORT}"}, PORT, "127.0.0.1") is not None
    foreign = {**good, "Origin": "https://evil.example"}
    assert local_refusal(foreign, PORT, "127.0.0.1") == (
        403,
        "cross-origin request from 'https://evil.example' refused",
    )
