"""The worker's /report/ page: the report (streamlearn.report) of what this worker's store
holds, read-only, for a browser on this machine.

The queries run on the analyst session (streams/sink.py: read-only, one ClickHouse thread,
niced); drawing the charts is CPU work, so it runs on a thread of its own, never on the event
loop; one build at a time, and a page built less than CACHE_S ago is served as it is. Only the
Host/Origin refusal of the store endpoints applies (no token: nothing here writes or takes SQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

import faust
from faust.web import Request, Response, View

from streamlearn.foundation.store import redact_url
from streamlearn.foundation.store.results import to_frame, typed_arrow
from streamlearn.report import report_html
from streamlearn.streams.sink import StoreSink
from streamlearn.streams.store_access import local_refusal, peer_of

if TYPE_CHECKING:
    from streamlearn.streams.parts import WorkerParts

CACHE_S = 30.0
QUERY_TIMEOUT_S = 120.0
# The page is self-contained: inline CSS and data: images, no script.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class ReportPage:
    """The report's HTML, rebuilt on demand at most every CACHE_S, one build at a time."""

    def __init__(self, sink: StoreSink, label: str, cache_s: float = CACHE_S) -> None:
        self.sink = sink
        self.label = label
        self.cache_s = cache_s
        self.body: bytes | None = None
        self.built_at = 0.0
        self.builds = 0
        self._lock: asyncio.Lock | None = None

    async def page(self) -> bytes:
        """The cached page, or a new one (callers arriving meanwhile wait for it)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.body is not None and time.monotonic() - self.built_at < self.cache_s:
                return self.body
            html = await self._off_the_loop(asyncio.get_running_loop())
            self.body, self.built_at = html.encode(), time.monotonic()
            self.builds += 1
            return self.body

    def _off_the_loop(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[str]:
        """_build on a daemon thread (a stopping worker never waits for a build)."""
        future: asyncio.Future[str] = loop.create_future()

        def settle(value: Any, error: BaseException | None) -> None:
            if future.done():  # the request that asked went away
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        def run() -> None:
            try:
                value, error = self._build(loop), None
            except BaseException as exc:  # handed to the request that waits for it
                value, error = None, exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, value, error)

        threading.Thread(target=run, name="report", daemon=True).start()
        return future

    def _build(self, loop: asyncio.AbstractEventLoop) -> str:
        """On the report thread: each query handed to the analyst lane via the loop."""

        def query_arrow(sql: str, parameters: Any, **_settings: Any) -> Any:
            call = self.sink.query_analyst(sql, parameters)
            return asyncio.run_coroutine_threadsafe(call, loop).result(QUERY_TIMEOUT_S)

        def query_df(sql: str, parameters: dict[str, Any]) -> Any:
            return to_frame(typed_arrow(query_arrow, sql, parameters))

        return report_html(query_df, None, self.label)


def register_report_view(app: faust.App, parts: WorkerParts) -> ReportPage:
    """GET /report/ on the worker's web port."""
    settings = parts.settings
    label = f"worker {settings.worker_id}, live ({redact_url(settings.store_url)})"
    report = ReportPage(parts.sink, label)
    port = settings.web_port

    @app.page("/report/")
    class Report(View):
        async def get(self, request: Request) -> Response:
            refused = local_refusal(request.headers, port, peer_of(request))
            if refused is not None:
                return self.text(refused[1], status=refused[0])
            return self.html((await report.page()).decode(), headers=dict(HEADERS))

    return report
