"""Avro schemas of the contract and their serde: single-object encoding and the Confluent format."""

from streamlearn.schemas.registry import SchemaError, SchemaRegistry
from streamlearn.schemas.serde import Serde, load_schema

__all__ = ["SchemaError", "SchemaRegistry", "Serde", "load_schema"]
