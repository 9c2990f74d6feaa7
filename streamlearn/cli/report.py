"""`streamlearn report`: charts of what the store holds, as one self-contained HTML page."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated

import typer

from streamlearn.cli.common import StateDir, StoreUrl, load_settings
from streamlearn.foundation.errors import ConfigError
from streamlearn.foundation.store import redact_url
from streamlearn.foundation.store.access import open_store
from streamlearn.report import build_report

AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([mhdw])")
UNIT_S = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def report(
    since: Annotated[
        str | None,
        typer.Option(
            help="Only data since then: a UTC date or time (2026-03-01T12:00) or an age "
            "(90m, 24h, 7d, 2w)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory to write (default: <state dir>/report).")
    ] = None,
    store: StoreUrl = None,
    state_dir: StateDir = None,
) -> None:
    """Charts of what the store holds, as one self-contained HTML page."""
    settings = load_settings(store=store, state_dir=state_dir)
    start = parse_since(since, dt.datetime.now(dt.UTC))
    st = open_store(settings, readonly=True)
    path = build_report(
        st.query_df, out or settings.state_dir / "report", start, redact_url(settings.store_url)
    )
    print(path)


def parse_since(text: str | None, now: dt.datetime) -> dt.datetime | None:
    """--since as an aware UTC datetime: an ISO date/time (naive means UTC) or an age."""
    if text is None:
        return None
    if age := AGE.fullmatch(text.strip().lower()):
        return now - dt.timedelta(seconds=float(age[1]) * UNIT_S[age[2]])
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(
            f"--since takes a UTC date or time (2026-03-01, 2026-03-01T12:00) or an age "
            f"(90m, 24h, 7d, 2w), not {text!r}"
        ) from exc
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
