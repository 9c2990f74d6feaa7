"""Opening the store from a CLI process: directly, or through the worker that owns chdb.

The embedded engine admits one process at a time. A running worker records its web port in
`<state dir>/worker.json`; while it answers, `retrain`, `query` and `status` send their SQL
to it (RemoteStore) instead of opening the files themselves. The worker's store endpoints
take only requests that carry the random token it writes at start to
`<state dir>/worker.token` (mode 0600): whoever can read that file is the worker's user.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamlearn.foundation.errors import StoreBusy, StoreUnavailable
from streamlearn.foundation.settings import Settings
from streamlearn.foundation.store import Store
from streamlearn.foundation.store.results import to_frame, to_rows, typed_arrow

WORKER_FILE = "worker.json"
TOKEN_FILE = "worker.token"
TOKEN_HEADER = "X-Streamlearn-Token"
# How the worker starts its refusal of SQL (streams/sql_policy.py), so the CLI can say why.
OUTSIDE_REFUSAL = "refused by the worker's SQL policy:"
# Statements `streamlearn query` runs; ClickHouse's readonly=1 refuses writes in any form.
READ_VERBS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")


def read_only_refusal(sql: str) -> str | None:
    """Why `streamlearn query` refuses this SQL before sending it, or None to send it.

    Only a clearer message: the query still runs with ClickHouse's readonly=1, which refuses
    INSERT, ALTER, DROP, CREATE, SET, table functions that write, and the like.
    """
    words = sql.strip().lstrip("(").split(None, 1)
    verb = words[0].rstrip(";").upper() if words else ""
    if verb in READ_VERBS:
        return None
    return (
        f"`streamlearn query` is read-only: {verb or 'an empty'} statement refused "
        "(use SELECT, SHOW, DESCRIBE or EXPLAIN)"
    )


def read_only_error(exc: StoreUnavailable) -> StoreUnavailable:
    """ClickHouse's (or the worker's) refusal of a write in a read-only query, as one line."""
    text = str(exc)
    if OUTSIDE_REFUSAL in text:
        return StoreUnavailable(
            "`streamlearn query` is read-only and reaches only the streamlearn database: "
            + text.split(OUTSIDE_REFUSAL, 1)[1].strip(" :")
        )
    if "READONLY" in text or "readonly mode" in text:
        return StoreUnavailable(
            "`streamlearn query` is read-only: ClickHouse refused the statement "
            "(Cannot execute query in readonly mode)"
        )
    return exc


def worker_file(settings: Settings) -> Path:
    return settings.state_dir / WORKER_FILE


def running_worker(settings: Settings) -> dict[str, Any] | None:
    """The worker that owns the embedded store, if one is alive."""
    path = worker_file(settings)
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return info


def token_file(settings: Settings) -> Path:
    return settings.state_dir / TOKEN_FILE


def create_token(settings: Settings) -> str:
    """A new random access token for this worker's store endpoints, written 0600."""
    path = token_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left with another mode keeps it through O_CREAT
    with os.fdopen(fd, "w") as f:
        f.write(token)
    os.replace(tmp, path)
    return token


def read_token(settings: Settings) -> str:
    """The running worker's access token; one clear line if this user cannot read it."""
    path = token_file(settings)
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise StoreBusy(
            f"cannot read the worker's access token {path} ({exc.strerror}): store access "
            "through the worker is for the user that runs it"
        ) from exc


def worker_store(
    settings: Settings, *, port: int | None = None, readonly: bool = False, timeout: float = 300
) -> RemoteStore:
    """The store served by the worker of these settings (its web port, its token)."""
    return RemoteStore(
        f"http://127.0.0.1:{port or settings.web_port}",
        readonly=readonly,
        timeout=timeout,
        token=read_token(settings),
    )


def open_store(settings: Settings, *, readonly: bool = False) -> Store | RemoteStore:
    """The store for a CLI command: through the owning worker if one runs, else directly."""
    if settings.embedded_store:
        info = running_worker(settings)
        if info is not None:
            return worker_store(settings, port=int(info["port"]), readonly=readonly)
    store = Store(settings.store_url)
    store.migrate()
    if not readonly:
        return store
    # A read-only session of its own: the migration above needed one that may write.
    store.close()
    return Store(settings.store_url, readonly=True)


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return {"$dt": value.timestamp()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$dt" in value and len(value) == 1:
        return dt.datetime.fromtimestamp(value["$dt"], dt.UTC)
    return value


def decode_rows(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows sent by RemoteStore.insert, with their datetimes restored."""
    return [[_decode(v) for v in row] for row in rows]


class RemoteStore:
    """The Store interface served by a running worker over its web port."""

    embedded = True

    def __init__(
        self,
        base_url: str,
        *,
        readonly: bool = False,
        timeout: float = 300,
        token: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.readonly = readonly
        self.timeout = timeout
        self.token = token

    def _post(self, path: str, payload: dict[str, Any]) -> bytes:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers[TOKEN_HEADER] = self.token
        req = urllib.request.Request(
            self.base_url + path, data=json.dumps(payload).encode(), headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            detail = " ".join(exc.read().decode(errors="replace").split())[:300]
            if exc.code == 401:
                raise StoreUnavailable(
                    f"the worker refused the access token (HTTP 401): {detail}"
                ) from exc
            raise StoreUnavailable(f"the worker refused the request: {detail}") from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise StoreBusy(
                f"the worker that owns the embedded store ({self.base_url}) did not answer: "
                f"{getattr(exc, 'reason', exc)}"
            ) from exc

    def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any):
        import pyarrow as pa

        body = self._post(
            "/store/query/",
            {"sql": sql, "parameters": parameters, "settings": settings, "readonly": self.readonly},
        )
        return pa.ipc.open_stream(body).read_all()

    def query_df(self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any):
        """The frame Store.query_df gives (results.to_frame), not Arrow's own pandas shapes."""
        return to_frame(typed_arrow(self.query_arrow, sql, parameters, **settings))

    def query_rows(
        self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any
    ) -> tuple[list[str], list[tuple]]:
        """The rows Store.query_rows gives (results.to_rows)."""
        return to_rows(typed_arrow(self.query_arrow, sql, parameters, **settings))

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> Any:
        body = self._post("/store/command/", {"sql": sql, "settings": settings})
        return json.loads(body)["result"]

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        token: str | None = None,
    ) -> None:
        self._post(
            "/store/insert/",
            {
                "table": table,
                "columns": list(columns),
                "rows": [[_encode(v) for v in row] for row in rows],
                "token": token,
            },
        )

    def migrate(self) -> None:
        """The worker migrated the store when it started."""

    def close(self) -> None:
        """Nothing to close: each request is its own connection."""
