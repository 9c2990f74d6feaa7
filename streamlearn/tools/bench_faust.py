"""A bare Faust agent that only consumes a topic: Faust's own ceiling on this machine.

Run by `streamlearn bench` in a child process; prints one JSON line with the events counted
and the seconds between the first and the last of them.
"""

from __future__ import annotations

import json
import os
import sys
import time

import faust

from streamlearn.foundation.kafka import faust_broker_options
from streamlearn.foundation.settings import Settings


def main() -> None:
    settings = Settings()
    target = int(sys.argv[1])
    (settings.state_dir / "bench-faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.topic_prefix}bench-faust-{os.getpid()}",
        **faust_broker_options(settings),
        store="memory://",
        web_enabled=False,
        datadir=str(settings.state_dir / "bench-faust"),
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
    )
    topic = app.topic(settings.topic("transactions"), key_serializer="raw", value_serializer="raw")
    seen = {"n": 0, "first": 0.0}

    @app.agent(topic)
    async def consume(stream):
        async for _event in stream.events():
            if seen["n"] == 0:
                seen["first"] = time.perf_counter()
            seen["n"] += 1
            if seen["n"] >= target:
                elapsed = time.perf_counter() - seen["first"]
                print(json.dumps({"events": seen["n"], "seconds": elapsed}), flush=True)
                os._exit(0)

    worker = faust.Worker(app, loglevel="error", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
