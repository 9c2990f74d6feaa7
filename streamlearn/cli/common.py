"""What the verbs share: the common options, settings with flags applied, the consoles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from streamlearn.foundation import logs
from streamlearn.foundation.errors import ConfigError
from streamlearn.foundation.settings import Settings

# Results go to stdout; progress and notes to stderr, so `> file` and pipes get data only.
console = Console()
err_console = Console(stderr=True)

Bootstrap = Annotated[
    str | None, typer.Option("--bootstrap", help="Kafka bootstrap (STREAMLEARN_KAFKA_BOOTSTRAP).")
]
StoreUrl = Annotated[
    str | None, typer.Option("--store", help="ClickHouse URL (STREAMLEARN_CLICKHOUSE_URL).")
]
StateDir = Annotated[
    Path | None, typer.Option("--state-dir", help="Local state (STREAMLEARN_STATE_DIR).")
]

MaturityS = Annotated[
    float | None, typer.Option(min=0, help="Label maturity in seconds (default from settings).")
]


def load_settings(
    bootstrap: str | None = None, store: str | None = None, state_dir: Path | None = None
) -> Settings:
    """Settings from the environment with the common flags applied; ConfigError names the
    setting that is wrong."""
    try:
        base = Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid setting {_first_problem(exc)}") from exc
    if base.log_format == "json":  # text: Python's default stays (warnings as bare lines)
        logs.configure("json")
    return base.with_overrides(kafka_bootstrap=bootstrap, clickhouse_url=store, state_dir=state_dir)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = ".".join(str(part) for part in error["loc"]) or "?"
    return f"{name} (STREAMLEARN_{name.upper()}): {error['msg']}"


def verb_app(**options: Any) -> typer.Typer:
    """A typer app for a verb group, with the top-level app's plain help and errors."""
    return typer.Typer(
        add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False, **options
    )


def short_number(value: object) -> str:
    """A figure for people (4 significant digits); exact output is `query`'s job."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={short_number(v)}" for k, v in value.items())
    return str(value)
