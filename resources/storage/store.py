"""The ``Store`` resource: partitioned tables in DuckDB (the default) or PostgreSQL/TimescaleDB.

Every table is declared in :mod:`resources.storage.tables`. A write is checked against that
declaration before anything touches the database, and a partition write replaces exactly the
rows of its half-open date window ``[start, end)`` in one transaction, so rewriting a partition is
idempotent and never touches its neighbours.

The backend follows the URL: ``postgresql://`` / ``postgres://`` → PostgreSQL (TimescaleDB
hypertables when the extension is available), anything else → a DuckDB file (parent directories
created). It is chosen lazily on first use and cached per resource instance. PostgreSQL
connections live for one operation; the DuckDB file stays open only while operations follow each
other (closed after 1 s idle and at the end of each Dagster step), so a Dagster UI process and a
CLI run take turns on it instead of locking each other out (see ``duckdb_backend``).

    store = Store(url="data/quant.duckdb")          # or Store() / Store.from_env()
    store.write_partition("raw_bars", bars, date(2024, 1, 2), date(2024, 1, 3))
    store.read("raw_bars", start, end, tickers=["AAPL"], columns=["date", "close"])
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import polars as pl
from pydantic import Field, PrivateAttr

from resources.settings import default_store_url
from resources.storage.tables import TABLES, TableSchema

logger = logging.getLogger("quant.store")

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class SchemaError(ValueError):
    """A frame, a request or a stored table does not match the declared table schema."""


class Backend(Protocol):
    """What a storage engine implements; frames reaching it are already validated."""

    @property
    def name(self) -> str: ...

    def replace_window(
        self, schema: TableSchema, frame: pl.DataFrame, start: date, end: date
    ) -> None: ...

    def replace_all(self, schema: TableSchema, frame: pl.DataFrame) -> None: ...

    def drop_table(self, schema: TableSchema) -> None: ...

    def replace_rows(self, schema: TableSchema, frame: pl.DataFrame, column: str) -> None: ...

    def read(
        self,
        schema: TableSchema,
        columns: Sequence[str],
        start: date | None,
        end: date | None,
        where: Mapping[str, Sequence[Any]],
    ) -> pl.DataFrame: ...

    def date_bounds(self, schema: TableSchema) -> tuple[date, date] | None: ...

    def count(self, schema: TableSchema, start: date | None, end: date | None) -> int: ...

    def close(self) -> None: ...


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe to log)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def check_columns(
    schema: TableSchema,
    found: Mapping[str, tuple[str, bool]],
    expected: Mapping[str, tuple[str, bool]],
) -> None:
    """Raise SchemaError naming every difference between a stored table and its declaration
    (columns as name -> (SQL type, nullable))."""
    problems = []
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if missing:
        problems.append(f"columns missing from the table: {missing}")
    if extra:
        problems.append(f"columns not in the schema: {extra}")
    for name, (sql_type, nullable) in expected.items():
        if name not in found:
            continue
        stored_type, stored_nullable = found[name]
        if stored_type != sql_type:
            problems.append(f"{name} is {stored_type}, expected {sql_type}")
        elif stored_nullable != nullable:
            problems.append(
                f"{name} is {'NULL' if stored_nullable else 'NOT NULL'}, "
                f"expected {'NULL' if nullable else 'NOT NULL'}"
            )
    if problems:
        raise SchemaError(
            f"stored table {schema.name} does not match its declared schema: "
            + "; ".join(problems)
            + " (no automatic migration: migrate or drop the table)"
        )


def storage_key(schema: TableSchema) -> tuple[str, ...]:
    """The key in the order the backends index and store rows: the time column first, so a
    window's rows are adjacent (window deletes, reads and date bounds use the primary key)."""
    if schema.time_column is None or schema.time_column not in schema.key:
        return schema.key
    return (schema.time_column, *(k for k in schema.key if k != schema.time_column))


# --- validation -----------------------------------------------------------------------------------


def table_schema(table: str) -> TableSchema:
    try:
        return TABLES[table]
    except KeyError:
        raise SchemaError(f"unknown table {table!r}; known tables: {sorted(TABLES)}") from None


def _castable(source: pl.DataType, target: pl.DataType) -> bool:
    """Casts a write accepts without asking: identical types, a column of nulls, integers to
    floats or wider/narrower integers (checked strictly), floats of either width, categorical
    text to text. Anything else (text to numbers, datetimes to dates, ...) is a schema error."""
    if source == target or source == pl.Null:
        return True
    if target.is_float():
        return source.is_integer() or source.is_float()
    if target.is_integer():
        return source.is_integer()
    if target == pl.String:
        return isinstance(source, pl.Categorical | pl.Enum)
    return False


def conform(schema: TableSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` checked against ``schema`` and cast to its exact column order and dtypes.

    Raises :class:`SchemaError` for missing or unexpected columns, types that do not cast
    safely, nulls in non-nullable (or key) columns, and duplicate keys."""
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"{schema.name}: expected a polars DataFrame, got {type(frame).__name__}")
    if frame.width == 0 and frame.height == 0:
        # an empty frame with no columns at all: nothing to write
        return pl.DataFrame(schema=schema.polars_schema)
    expected = schema.column_names
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if extra:
            parts.append(f"unexpected columns {extra}")
        raise SchemaError(f"{schema.name}: " + "; ".join(parts))

    bad_types = [
        f"{c.name} is {frame.schema[c.name]}, expected {c.dtype}"
        for c in schema.columns
        if not _castable(frame.schema[c.name], c.dtype)
    ]
    if bad_types:
        raise SchemaError(f"{schema.name}: wrong column types: " + "; ".join(bad_types))
    try:
        out = frame.select(pl.col(c.name).cast(c.dtype, strict=True) for c in schema.columns)
    except pl.exceptions.PolarsError as exc:  # e.g. an integer that overflows a narrower type
        raise SchemaError(f"{schema.name}: values do not fit the column types: {exc}") from exc

    not_null = [c.name for c in schema.columns if not c.nullable or c.name in schema.key]
    if out.height and not_null:
        counts = out.select(pl.col(not_null).null_count()).row(0)
        with_nulls = [f"{name} ({n})" for name, n in zip(not_null, counts, strict=True) if n]
        if with_nulls:
            raise SchemaError(
                f"{schema.name}: nulls in non-nullable columns: {', '.join(with_nulls)}"
            )

    if out.height > 1:
        duplicated = out.select(schema.key).is_duplicated()
        if duplicated.any():
            sample = out.select(schema.key).filter(duplicated).unique().head(3).rows()
            raise SchemaError(
                f"{schema.name}: {int(duplicated.sum())} rows share a key {list(schema.key)}; "
                f"e.g. {sample}"
            )
    return out


def _check_window(schema: TableSchema, frame: pl.DataFrame, start: date, end: date) -> None:
    assert schema.time_column is not None
    if not start < end:
        raise SchemaError(f"{schema.name}: empty window [{start}, {end})")
    if frame.height:
        column = pl.col(schema.time_column)
        outside = frame.filter((column < start) | (column >= end))
        if outside.height:
            lo, hi = str(outside[schema.time_column].min()), str(outside[schema.time_column].max())
            raise SchemaError(
                f"{schema.name}: {outside.height} rows have {schema.time_column} outside the "
                f"window [{start}, {end}) (from {lo} to {hi})"
            )


# --- the resource ---------------------------------------------------------------------------------

_BACKEND_LOCK = threading.Lock()


def _resolve_url(url: Any) -> str:
    # Dagster resolves EnvVar fields inside a run; a Store built and used directly resolves here
    if isinstance(url, dg.EnvVar):
        return str(url.get_value())
    return str(url)


def open_backend(url: str, reader: bool = False) -> Backend:
    """The backend a URL names (imports the driver only when needed); ``reader``: a reader's
    backend (DuckDB: the published snapshot; PostgreSQL: a connection pool of its own)."""
    if url.startswith(POSTGRES_SCHEMES):
        from resources.storage.postgres_backend import PostgresBackend

        return PostgresBackend(url, pooled=reader)
    from resources.storage.duckdb_backend import DuckDBBackend

    return DuckDBBackend(url, reads_snapshot=reader)


class Store(dg.ConfigurableResource):
    """Partitioned table storage: DuckDB file path or ``postgresql://`` URL.

    All dates are ``datetime.date``; windows are half-open ``[start, end)``."""

    url: str = Field(
        default_factory=default_store_url,
        description="A DuckDB file path, or a postgresql:// URL (PostgreSQL/TimescaleDB). "
        "Defaults to QUANT_STORE_URL or <data dir>/quant.duckdb.",
    )

    reader: bool = Field(
        default=False,
        description="A reader (the API, the dashboard): it never blocks or waits for the "
        "pipeline (DuckDB: it reads the snapshot the pipeline publishes; PostgreSQL: through "
        "its own connection pool) and it cannot write.",
    )

    cache_url: str | None = Field(
        default=None,
        description="The Redis URL of the serving cache (QUANT_REDIS_URL): each write of "
        "predictions, target_weights, risk_metrics or order_journal publishes that table's "
        "latest session there (resources/serving_cache.py). None: no cache.",
    )

    _backend: Any = PrivateAttr(default=None)
    _cache: Any = PrivateAttr(default=None)

    @classmethod
    def from_env(cls, reader: bool = False) -> Store:
        """A store at ``QUANT_STORE_URL`` or the default DuckDB file."""
        return cls(url=default_store_url(), reader=reader)

    # --- internals ---

    def _get_backend(self) -> Backend:
        backend = self._backend
        if backend is None:
            with _BACKEND_LOCK:
                if self._backend is None:
                    self._backend = open_backend(_resolve_url(self.url), self.reader)
                backend = self._backend
        return backend

    def close(self) -> None:
        """Release what the backend holds between operations (the DuckDB file, so another
        process can open it); the next operation reopens it."""
        if self._backend is not None:
            self._backend.close()

    def serving_cache(self) -> Any:
        """The serving cache client (None without ``cache_url``)."""
        if self.cache_url and self._cache is None:
            from resources.serving_cache import ServingCache

            self._cache = ServingCache(self.cache_url)
        return self._cache

    def _publish(self, table: str) -> None:
        """Write-through: the table's latest served rows to the serving cache, if any."""
        from resources.serving_cache import KIND_OF_TABLE, publish_latest

        cache = self.serving_cache()
        if cache is not None and table in KIND_OF_TABLE:
            publish_latest(cache, self, table)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def _refuse_reader(self, table: str) -> None:
        if self.reader:
            raise PermissionError(
                f"{table}: this store is a reader (API, dashboard); tables are written by the "
                "pipeline"
            )

    @property
    def backend_name(self) -> str:
        """``duckdb``, ``postgresql`` or ``timescaledb``."""
        return self._get_backend().name

    # --- writes ---

    def write_partition(self, table: str, frame: pl.DataFrame, start: date, end: date) -> int:
        """Replace the rows of ``table`` with ``start <= time_column < end`` by ``frame``, in one
        transaction; returns the number of rows written. An empty frame clears the window."""
        self._refuse_reader(table)
        schema = table_schema(table)
        if schema.time_column is None:
            raise SchemaError(
                f"{table} has no time column: it cannot be written by window (use replace_table)"
            )
        rows = conform(schema, frame)
        _check_window(schema, rows, start, end)
        self._get_backend().replace_window(schema, rows, start, end)
        self._publish(table)
        return rows.height

    def replace_table(self, table: str, frame: pl.DataFrame) -> int:
        """Replace every row of ``table`` by ``frame`` in one transaction; returns rows written.
        A table stored by an earlier version of its schema is dropped and created anew: every
        row of it was to be replaced anyway (``universe``, the last backtest's tables)."""
        self._refuse_reader(table)
        schema = table_schema(table)
        rows = conform(schema, frame)
        backend = self._get_backend()
        try:
            backend.replace_all(schema, rows)
        except SchemaError:
            backend.drop_table(schema)
            backend.replace_all(schema, rows)
        return rows.height

    def upsert(self, table: str, frame: pl.DataFrame) -> int:
        """Insert the rows of ``frame``, replacing the stored rows with the same key, in one
        transaction (for tables keyed by one column, such as the order journal: a row is
        written, then updated in place as its state changes); returns rows written."""
        self._refuse_reader(table)
        schema = table_schema(table)
        if len(schema.key) != 1:
            raise SchemaError(f"{table} is keyed by {schema.key}: upsert needs a one-column key")
        rows = conform(schema, frame)
        (column,) = schema.key
        self._get_backend().replace_rows(schema, rows, column)
        self._publish(table)
        return rows.height

    # --- reads ---

    def read(
        self,
        table: str,
        start: date | None = None,
        end: date | None = None,
        tickers: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
        where: Mapping[str, Sequence[Any]] | None = None,
    ) -> pl.DataFrame:
        """Rows of ``table`` (optionally ``start <= date < end``, only ``tickers``, only
        ``columns``, and ``where`` column-IN-values filters), ordered by the table's key, with
        the table's exact dtypes. An empty result still carries the schema."""
        schema = table_schema(table)
        names = schema.column_names
        if columns is None:
            selected = list(names)
        else:
            if isinstance(columns, str):
                columns = [columns]
            unknown = [c for c in columns if c not in names]
            if unknown:
                raise SchemaError(f"{table}: unknown columns {unknown}; columns are {names}")
            selected = list(dict.fromkeys(columns))
        if (start is not None or end is not None) and schema.time_column is None:
            raise SchemaError(f"{table} has no time column: it cannot be read by date")
        filters: dict[str, list[Any]] = {}
        for column, values in (where or {}).items():
            if column not in names:
                raise SchemaError(f"{table}: unknown filter column {column!r}")
            filters[column] = _values(values)
        if tickers is not None:
            if "ticker" not in names:
                raise SchemaError(f"{table} has no ticker column to filter on")
            filters["ticker"] = _values(tickers)
        if any(not v for v in filters.values()):
            return pl.DataFrame(schema={c: schema.polars_schema[c] for c in selected})
        frame = self._get_backend().read(schema, selected, start, end, filters)
        return frame.select(pl.col(c).cast(schema.polars_schema[c]) for c in selected)

    def date_bounds(self, table: str) -> tuple[date, date] | None:
        """``(first, last)`` stored date of ``table`` (both inclusive), or None when empty."""
        schema = table_schema(table)
        if schema.time_column is None:
            raise SchemaError(f"{table} has no time column")
        return self._get_backend().date_bounds(schema)

    def count(self, table: str, start: date | None = None, end: date | None = None) -> int:
        """Rows of ``table``, optionally only those with ``start <= date < end``."""
        schema = table_schema(table)
        if (start is not None or end is not None) and schema.time_column is None:
            raise SchemaError(f"{table} has no time column: it cannot be counted by date")
        return self._get_backend().count(schema, start, end)


def _values(values: Sequence[Any]) -> list[Any]:
    if isinstance(values, str):
        return [values]
    if isinstance(values, pl.Series):
        return values.unique().to_list()
    return list(dict.fromkeys(values))
