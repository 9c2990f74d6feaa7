"""`streamlearn schemas register|list`: writer schemas on the compacted schemas topic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from streamlearn.cli.common import Bootstrap, console, load_settings, verb_app
from streamlearn.foundation.errors import Refused
from streamlearn.schemas.publish import register, registered

app = verb_app(help="Writer schemas producers may use.", no_args_is_help=True)


@app.command("register")
def schemas_register(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="An .avsc file.")],
    bootstrap: Bootstrap = None,
) -> None:
    """Register a writer schema after checking it resolves against the reader schema (and in the
    schema registry too when STREAMLEARN_SCHEMA_REGISTRY_URL is set)."""
    try:
        schema = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Refused(f"{file} is not a JSON Avro schema: {exc}") from exc
    done = register(load_settings(bootstrap), schema)
    where = f", and as {done.subject} id {done.schema_id}" if done.subject else ""
    console.print(f"registered {file.name} as {done.fingerprint}{where}")


@app.command("list")
def schemas_list(bootstrap: Bootstrap = None) -> None:
    """List the writer schemas registered on the schemas topic."""
    table = Table("fingerprint", "name", "fields")
    for fp, schema in registered(load_settings(bootstrap)):
        table.add_row(fp, schema.get("name", "?"), str(len(schema.get("fields", []))))
    console.print(table)
