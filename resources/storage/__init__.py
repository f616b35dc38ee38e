"""Table storage: the ``Store`` resource (DuckDB or PostgreSQL/TimescaleDB) and its schemas."""

from resources.storage.store import SchemaError, Store
from resources.storage.tables import TABLES, Column, TableSchema

__all__ = ["TABLES", "Column", "SchemaError", "Store", "TableSchema"]
