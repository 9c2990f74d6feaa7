"""The report live on the worker's web port (/report/): built on the analyst session off the
event loop, one build at a time, cached; refused to a foreign Host or Origin, no token needed."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.streams.report_view import ReportPage
from streamlearn.streams.sink import StoreSink
from streamlearn.tools.processes import WorkerProcess
from streamlearn.tools.simulate import OutcomeDelays, Simulator
from streamlearn.tools.simulate.replay import Replayer
from tests.integration.kafka_helpers import wait_until
from tests.integration.report_data import seed

IMAGE = re.compile(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"')


def test_the_page_is_built_once_off_the_loop_and_cached(tmp_path: Path) -> None:
    sink = StoreSink(f"chdb://{tmp_path}/ch")
    try:
        sink.store.migrate()
        seed(sink.store)
        page = ReportPage(sink, "test store")

        async def scenario() -> tuple[list[bytes], int, bytes]:
            ticks = 0
            done = asyncio.Event()

            async def ticker() -> None:  # the loop keeps turning while the charts are drawn
                nonlocal ticks
                while not done.is_set():
                    ticks += 1
                    await asyncio.sleep(0.01)

            tick = asyncio.ensure_future(ticker())
            t0 = time.monotonic()
            bodies = await asyncio.gather(page.page(), page.page(), page.page())
            elapsed = time.monotonic() - t0
            done.set()
            await tick
            # Half the build's duration in 10 ms ticks, at least: never blocked for long.
            assert ticks >= elapsed / 0.01 / 2, (ticks, elapsed)
            again = await page.page()
            return bodies, page.builds, again

        bodies, builds, again = asyncio.run(scenario())
        assert builds == 1 and bodies[0] == bodies[1] == bodies[2] == again
        html = bodies[0].decode()
        assert "<title>streamlearn report</title>" in html and "test store" in html
        assert len(IMAGE.findall(html)) == 8, "every chart drawn from the seeded store"

        page.cache_s = 0.0  # expired: the next request builds anew
        asyncio.run(page.page())
        assert page.builds == 2
    finally:
        sink.close()


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.timeout(300)
def test_the_worker_serves_its_report_page(settings: Settings, tmp_path: Path) -> None:
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        sim = Simulator(
            seed=5, cards=300, merchants=50, fraud_rate=0.05, delays=OutcomeDelays.scaled(60)
        )
        replayer = Replayer(settings)
        start = int(time.time() * 1000) - 3_600_000
        counts = replayer.publish(sim.events(start, until_ms=start + 3_000_000))
        replayer.release_until(int(time.time() * 1000))
        worker.wait_for("transactions", counts.transactions, timeout=120)
        worker.wait_for("outcomes", replayer.counts.outcomes, timeout=120)
        url = f"http://127.0.0.1:{settings.web_port}/report/"

        status, headers, body = get(url)  # no token: read-only
        assert status == 200, body[:300]
        assert headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        html = body.decode()
        assert f"worker {settings.worker_id}, live" in html
        assert "transactions scored from" in html
        drawn = IMAGE.findall(html)
        assert len(drawn) >= 3, html[:2000]  # throughput, curves, score distribution at least
        assert html.count("<section id=") == 8
        assert worker.status()["transactions"] == counts.transactions  # still serving

        status, _, body = get(url, Host=f"attacker.example:{settings.web_port}")
        assert status == 403 and b"not this worker's address" in body
        status, _, body = get(url, Origin="http://attacker.example")
        assert status == 403 and b"cross-origin" in body
        # The online metrics the learning thread publishes (every 2 s) once it has learned.
        worker.wait_for("learned", replayer.counts.outcomes, timeout=60)
        wait_until(lambda: worker.status().get("online_metrics"), timeout=30, what="metrics")
    finally:
        assert worker.stop() == 0
    # A graceful stop writes the online metrics it has not written yet (the timer's first turn
    # is a minute in: this test is shorter), so the last minute reaches the report too.
    store = Store(settings.store_url, readonly=True)
    try:
        _, rows = store.query_rows("SELECT count(), min(time) FROM streamlearn.online_metrics")
        assert rows[0][0] > 0, rows
    finally:
        store.close()
