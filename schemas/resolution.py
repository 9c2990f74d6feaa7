"""Avro schema resolution rules (spec: "Schema Resolution"), checked on the schemas alone.

A writer schema is accepted only if *every* datum it can produce resolves into the reader
schema: each writer union branch must match a reader branch, numeric types may only widen,
record fields the reader needs must be written or have a default.
"""

from __future__ import annotations

from typing import Any

PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "double": {"double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return schema["type"] if isinstance(schema["type"], str) else _kind(schema["type"])
    return schema


def _name(schema: Any) -> str:
    return str(schema.get("name", "")).rsplit(".", 1)[-1] if isinstance(schema, dict) else ""


def incompatibilities(writer: Any, reader: Any, path: str = "") -> list[str]:
    """Why data written with `writer` cannot always be read as `reader` (empty: it can)."""
    wk, rk = _kind(writer), _kind(reader)
    if wk == "union":
        problems = []
        for branch in writer:
            if incompatibilities(branch, reader, path):
                problems.append(f"{path or 'value'}: writer branch {_kind(branch)} has no match")
        return problems
    if rk == "union":
        if any(not incompatibilities(writer, branch, path) for branch in reader):
            return []
        return [f"{path or 'value'}: {wk} matches no branch of the reader's union"]
    if isinstance(writer, dict) and isinstance(writer.get("type"), dict | list):
        return incompatibilities(writer["type"], reader, path)
    if isinstance(reader, dict) and isinstance(reader.get("type"), dict | list):
        return incompatibilities(writer, reader["type"], path)
    if wk in PROMOTIONS:
        return [] if rk in PROMOTIONS[wk] else [f"{path or 'value'}: {wk} cannot be read as {rk}"]
    if wk != rk:
        return [f"{path or 'value'}: {wk} cannot be read as {rk}"]
    if wk in ("null", "boolean"):
        return []
    if wk == "array":
        return incompatibilities(writer["items"], reader["items"], f"{path}[]")
    if wk == "map":
        return incompatibilities(writer["values"], reader["values"], f"{path}{{}}")
    if wk == "fixed":
        ok = writer.get("size") == reader.get("size") and _name(writer) == _name(reader)
        return [] if ok else [f"{path or 'value'}: fixed {_name(writer)} differs"]
    if wk == "enum":
        missing = set(writer.get("symbols", [])) - set(reader.get("symbols", []))
        if missing and "default" not in reader:
            return [f"{path or 'value'}: enum symbols {sorted(missing)} unknown to the reader"]
        return []
    if wk == "record":
        problems = []
        if _name(writer) != _name(reader):
            problems.append(f"{path or 'record'}: {_name(writer)} is not {_name(reader)}")
        written = {f["name"]: f for f in writer.get("fields", [])}
        for field in reader.get("fields", []):
            sub = f"{path}.{field['name']}" if path else field["name"]
            if field["name"] in written:
                problems += incompatibilities(written[field["name"]]["type"], field["type"], sub)
            elif "default" not in field:
                problems.append(f"{sub}: required by the reader, missing from the writer")
        return problems
    return [f"{path or 'value'}: unsupported type {wk}"]
