"""A Quix Streams app doing consume -> decode -> produce per event: the peer to beat.

Run by `streamlearn bench` in a child process when `quixstreams` is installed (the `bench`
extra): `python -m streamlearn.tools.bench.quix_app GROUP TOPIC OUT_TOPIC COUNT`. The bench
commits the group's start offsets first. Each event is decoded with the project's serde and
its record encoded again and produced to OUT_TOPIC (the work a scorer's decode and publish
stand for). Prints one JSON line: events and the seconds from the first to the last.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from quixstreams import Application

from streamlearn.foundation.settings import Settings
from streamlearn.schemas import Serde


def main() -> None:
    settings = Settings()
    group, topic_name, out_name, target = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    serde = Serde("Transaction")
    app = Application(
        broker_address=settings.kafka_bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        loglevel=logging.ERROR,
        use_changelog_topics=False,
        state_dir=str(settings.state_dir / "bench-quix"),
    )
    source = app.topic(topic_name, key_deserializer="bytes", value_deserializer="bytes")
    out = app.topic(out_name, key_serializer="bytes", value_serializer="bytes")
    seen = {"n": 0, "first": 0.0, "last": 0.0}

    def work(value: bytes) -> bytes:
        now = time.perf_counter()
        if seen["n"] == 0:
            seen["first"] = now
        seen["n"] += 1
        seen["last"] = now
        record: dict[str, Any] = serde.decode(value)
        return serde.encode(record)

    app.dataframe(source).apply(work).to_topic(out)
    app.run(count=target, timeout=120, collect=False)
    print(json.dumps({"events": seen["n"], "seconds": seen["last"] - seen["first"]}), flush=True)


if __name__ == "__main__":
    main()
