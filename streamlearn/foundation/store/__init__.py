"""The store (ClickHouse): clients for chdb and servers, the DDL, dedup tokens, URL redaction."""

from streamlearn.foundation.store.client import Store
from streamlearn.foundation.store.dedup import batch_token
from streamlearn.foundation.store.tables import DATABASE, DDL
from streamlearn.foundation.store.urls import redact_url

__all__ = ["DATABASE", "DDL", "Store", "batch_token", "redact_url"]
