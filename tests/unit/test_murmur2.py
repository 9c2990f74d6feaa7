"""murmur2 everywhere: every confluent-kafka Producer of ours hashes keys like the Java client.

librdkafka's default partitioner (consistent_random) hashes with CRC32, so a card written by
a Java or Faust producer and by ours would land on two partitions. The integration test
tests/integration/test_partitioning.py checks the broker's placements; this one checks the
reference hash and that no Producer in the product is built without producer_config.
"""

from __future__ import annotations

import ast
import os
import zlib
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from streamlearn.foundation.kafka import producer_config
from streamlearn.foundation.settings import Settings
from tests.murmur2 import java_partition, murmur2

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("streamlearn", "streams", "batch_retrain", "schemas", "learners")

# Apache Kafka's UtilsTest.testMurmur2 vectors.
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("data", JAVA_VECTORS)
def test_the_reference_murmur2_matches_kafkas_own_vectors(data: bytes) -> None:
    assert murmur2(data) == JAVA_VECTORS[data]


def test_faust_producers_hash_the_same_way() -> None:
    """aiokafka (under Faust) ports the Java hash too: all our producers agree with it."""
    for i in range(500):
        key = f"card-{i:05d}".encode()
        assert murmur2(key) & 0x7FFFFFFF == aiokafka_murmur2(key) & 0x7FFFFFFF


def test_crc32_would_split_cards_across_partitions() -> None:
    """Why it matters: librdkafka's default (CRC32) disagrees for most keys."""
    keys = [f"card-{i:05d}".encode() for i in range(40)]
    differ = sum(java_partition(k, 4) != zlib.crc32(k) % 4 for k in keys)
    assert differ > 20


def test_producer_config_asks_librdkafka_for_murmur2() -> None:
    conf = producer_config(Settings(), **{"linger.ms": 5})
    assert conf["partitioner"] == "murmur2_random"
    assert conf["linger.ms"] == 5
    assert producer_config(Settings(), partitioner="murmur2")["partitioner"] == "murmur2"


def _product_files() -> list[Path]:
    """Every .py of the product once (the linked folders are read where they live)."""
    files = set()
    for folder in PRODUCT:
        for parent, _dirs, names in os.walk(ROOT / folder):  # does not follow the links
            files.update(Path(parent, n).resolve() for n in names if n.endswith(".py"))
    return sorted(files)


def _producer_calls() -> list[tuple[str, int, str]]:
    """(file, line, how its config is built) for every Producer(...) call in the product."""
    found = []
    for path in _product_files():
        for node in ast.walk(ast.parse(path.read_text())):
            callee = getattr(node, "func", None)
            name = getattr(callee, "id", None) or getattr(callee, "attr", None)
            if isinstance(node, ast.Call) and name in ("Producer", "SerializingProducer"):
                arg = node.args[0] if node.args else None
                how = getattr(getattr(arg, "func", None), "id", type(arg).__name__)
                found.append((str(path.relative_to(ROOT)), node.lineno, how))
    return found


def test_every_producer_of_ours_is_built_with_producer_config() -> None:
    calls = _producer_calls()
    assert len(calls) >= 8, calls  # worker, dead letters, releases, schemas, simulator, bench
    wrong = [c for c in calls if c[2] != "producer_config"]
    assert not wrong, f"Producer(...) without producer_config (murmur2): {wrong}"
