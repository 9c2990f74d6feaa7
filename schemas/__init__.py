"""Avro schemas of the contract and their single-object-encoding serde (fastavro)."""

from streamlearn.schemas.serde import SchemaError, SchemaRegistry, Serde, load_schema

__all__ = ["SchemaError", "SchemaRegistry", "Serde", "load_schema"]
