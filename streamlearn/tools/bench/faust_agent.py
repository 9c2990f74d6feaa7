"""A bare Faust agent that only consumes a topic: Faust's own per-event ceiling here.

Run by `streamlearn bench` in a child process (`python -m streamlearn.tools.bench.faust_agent
APP_ID TOPIC COUNT`): the bench commits the group's start offsets first, so the agent reads
exactly the preloaded events. Prints one JSON line: the events counted and the seconds
between the first and the last of them.
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
    app_id, topic_name, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
    datadir = settings.state_dir / "bench-faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        **faust_broker_options(settings),
        store="memory://",
        web_enabled=False,
        datadir=str(datadir),
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
    )
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
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
                os._exit(0)  # the figure is out: no graceful stop to wait for

    worker = faust.Worker(app, loglevel="error", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
