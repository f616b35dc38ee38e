"""PostgreSQL backend (psycopg 3): CSV COPY in and out, TimescaleDB hypertables when available.

Writes stream the frame, sorted in primary-key order (time column first), through
``COPY ... FROM STDIN (FORMAT binary)`` inside the same transaction as the window's DELETE. The
binary rows are built with numpy record arrays, one per row layout (string lengths, null
pattern), so no Python code runs per row; a frame with too many layouts goes as CSV written by
polars. Reads run ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` and parse it with polars, which is
far faster than fetching Python rows, then sort by the key in polars. Text columns use the "C"
collation, so keys order byte-wise as in polars and DuckDB whatever the database's locale.

On the first connection the backend checks ``pg_available_extensions`` for ``timescaledb``: when
it is there (and can be created), tables with a time column become hypertables on it. Which of the
two it uses is logged once (logger ``quant.store``), with the URL's password redacted.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg_pool import ConnectionPool

from resources.storage.store import SchemaError, check_columns, redact_url, storage_key
from resources.storage.tables import TableSchema

logger = logging.getLogger("quant.store")

# polars dtype -> (type in CREATE TABLE, type as format_type() reports it)
_TYPES: dict[pl.DataType, tuple[str, str]] = {
    # byte-wise collation: the order polars and DuckDB sort in, whatever the database's locale
    pl.String(): ('TEXT COLLATE "C"', "text"),
    pl.Date(): ("DATE", "date"),
    pl.Float64(): ("DOUBLE PRECISION", "double precision"),
    pl.Float32(): ("REAL", "real"),
    pl.Int64(): ("BIGINT", "bigint"),
    pl.Int32(): ("INTEGER", "integer"),
    pl.Int16(): ("SMALLINT", "smallint"),
    pl.Int8(): ("SMALLINT", "smallint"),
    pl.Boolean(): ("BOOLEAN", "boolean"),
}

COPY_CHUNK_ROWS = 100_000
"""Rows per CSV chunk streamed into COPY (bounds the memory of a large write)."""

MAX_BINARY_LAYOUTS = 64
"""Binary COPY groups rows by layout (string byte lengths, which values are null); a frame
with more distinct layouts than this goes as CSV instead."""

_SETUP_LOCK = threading.Lock()
# connections a reader store (API, dashboard) keeps open at most
POOL_SIZE = 8

# --- COPY encoders --------------------------------------------------------------------------------

_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_BINARY_TRAILER = struct.pack(">h", -1)
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 - 1970-01-01
# polars dtype -> numpy dtype of its value in PostgreSQL's binary format (big-endian)
_BINARY: dict[pl.DataType, str] = {
    pl.Date(): ">i4",
    pl.Float64(): ">f8",
    pl.Float32(): ">f4",
    pl.Int64(): ">i8",
    pl.Int32(): ">i4",
    pl.Int16(): ">i2",
    pl.Int8(): ">i2",
    pl.Boolean(): "u1",
}


def _layout_exprs(frame: pl.DataFrame) -> list[pl.Expr]:
    """Per row, what decides its binary layout: each string's byte length (-1 for null) and
    whether each nullable fixed-width value is null."""
    exprs = []
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            exprs.append(pl.col(name).str.len_bytes().cast(pl.Int64).fill_null(-1))
        elif frame[name].null_count():
            exprs.append(pl.col(name).is_null())
    return exprs


def binary_layouts(frame: pl.DataFrame) -> int:
    """How many distinct row layouts ``frame`` has (see ``MAX_BINARY_LAYOUTS``)."""
    exprs = _layout_exprs(frame)
    return frame.select(exprs).n_unique() if exprs and frame.height else 1


def _fixed_values(series: pl.Series) -> np.ndarray:
    if series.dtype == pl.Date:
        return series.cast(pl.Int32).to_numpy() - _PG_EPOCH_DAYS
    return series.to_numpy()


def _string_values(series: pl.Series, width: int) -> np.ndarray:
    """The UTF-8 bytes of a series whose values are all ``width`` bytes long, as ``S<width>``."""
    array = series.to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    first = int(np.frombuffer(array.buffers()[1], np.int64, count=1, offset=8 * array.offset)[0])
    return np.frombuffer(array.buffers()[2], f"S{width}", count=len(array), offset=first)


def _binary_rows(frame: pl.DataFrame) -> Iterator[memoryview]:
    """``frame``'s rows in PostgreSQL's binary COPY format: one numpy record array per layout,
    so every field is written by a vectorised column assignment, never row by row."""
    exprs = _layout_exprs(frame)  # each named after its column
    groups: list[tuple[dict[str, Any], list[int] | None]] = [({}, None)]
    if exprs:
        keyed = frame.select(exprs).with_row_index("__row")
        keys = keyed.columns[1:]
        layouts = keyed.group_by(keys, maintain_order=True).agg("__row")
        groups = [
            (dict(zip(keys, row[:-1], strict=True)), row[-1] if layouts.height > 1 else None)
            for row in layouts.iter_rows()
        ]
    for layout, rows in groups:
        part = frame if rows is None else frame[rows]
        fields: list[tuple[str, str]] = [("count", ">i2")]
        values: list[tuple[str, Any]] = [("count", frame.width)]
        for i, (name, dtype) in enumerate(frame.schema.items()):
            fields.append((f"len{i}", ">i4"))
            state = layout.get(name)
            if dtype == pl.String:
                width = int(layout[name])
                values.append((f"len{i}", width))
                if width > 0:
                    fields.append((f"val{i}", f"S{width}"))
                    values.append((f"val{i}", _string_values(part[name], width)))
            elif state:  # null in this layout
                values.append((f"len{i}", -1))
            else:
                fmt = _BINARY[dtype]
                fields.append((f"val{i}", fmt))
                values.append((f"len{i}", np.dtype(fmt).itemsize))
                values.append((f"val{i}", _fixed_values(part[name])))
        records = np.empty(part.height, dtype=np.dtype(fields))
        for field, value in values:
            records[field] = value
        yield records.data.cast("B")


def binary_copy_data(frame: pl.DataFrame) -> Iterator[bytes | memoryview]:
    yield _BINARY_HEADER
    for chunk in frame.iter_slices(COPY_CHUNK_ROWS):
        yield from _binary_rows(chunk)
    yield _BINARY_TRAILER


def csv_copy_data(frame: pl.DataFrame) -> Iterator[bytes | memoryview]:
    for chunk in frame.iter_slices(COPY_CHUNK_ROWS):
        buffer = io.BytesIO()
        # nulls as unquoted empty fields, empty strings as "" (PostgreSQL's CSV rules)
        chunk.write_csv(buffer, include_header=False, null_value="")
        yield buffer.getbuffer()


def _sql_type(schema: TableSchema, dtype: pl.DataType) -> tuple[str, str]:
    try:
        return _TYPES[dtype]
    except KeyError:
        raise SchemaError(f"{schema.name}: no PostgreSQL type for {dtype}") from None


def _normalise_type(pg_type: str) -> str:
    return "text" if pg_type.startswith("character varying") else pg_type


def create_table_sql(schema: TableSchema) -> sql.Composed:
    columns = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(c.name),
            sql.SQL(_sql_type(schema, c.dtype)[0]),
            sql.SQL("" if c.nullable and c.name not in schema.key else " NOT NULL"),
        )
        for c in schema.columns
    ]
    columns.append(
        sql.SQL("PRIMARY KEY ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, storage_key(schema)))
        )
    )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        sql.Identifier(schema.name), sql.SQL(", ").join(columns)
    )


class PostgresBackend:
    """``pooled``: a reader store (API, dashboard) keeps its own small connection pool, so a
    burst of requests reuses connections instead of opening one each; the pipeline's steps
    open a connection per operation. PostgreSQL's MVCC means neither waits for the other."""

    def __init__(self, url: str, pooled: bool = False) -> None:
        self.url = url
        self.timescale: bool | None = None  # decided on the first connection
        self._ready: set[str] = set()  # tables created or checked against their schema
        self._pool: ConnectionPool | None = None
        if pooled:
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=POOL_SIZE,
                kwargs={"autocommit": True, "application_name": "quant-reader"},
                open=True,
            )

    @property
    def name(self) -> str:
        if self.timescale is None:
            with self._connect():
                pass
        return "timescaledb" if self.timescale else "postgresql"

    # --- connections ---

    def close(self) -> None:
        """Nothing to release: a writer's connections live for one operation, a reader's pool
        lives as long as the reader (``close_pool``)."""

    def close_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[Any]]:
        if self._pool is not None:
            with self._pool.connection() as pooled:
                if self.timescale is None:
                    self._setup(pooled)
                yield pooled
            return
        conn = psycopg.connect(self.url, autocommit=True, application_name="quant-store")
        try:
            if self.timescale is None:
                self._setup(conn)
            yield conn
        finally:
            conn.close()

    def _setup(self, conn: psycopg.Connection[Any]) -> None:
        with _SETUP_LOCK:
            if self.timescale is not None:
                return
            timescale = False
            available = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
            ).fetchone()
            if available:
                try:
                    with conn.transaction():
                        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                    timescale = True
                except psycopg.Error as exc:
                    logger.warning(
                        "store: timescaledb is available but could not be enabled (%s); "
                        "using plain PostgreSQL tables",
                        str(exc).strip().splitlines()[0]
                        if str(exc).strip()
                        else type(exc).__name__,
                    )
            logger.info(
                "store: PostgreSQL at %s, %s",
                redact_url(self.url),
                "TimescaleDB hypertables" if timescale else "plain tables (no TimescaleDB)",
            )
            self.timescale = timescale

    def _columns(self, conn: psycopg.Connection[Any], table: str) -> dict[str, tuple[str, bool]]:
        rows = conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull "
            "FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [sql.Identifier(table).as_string(conn)],
        ).fetchall()
        return {name: (_normalise_type(pg_type), not notnull) for name, pg_type, notnull in rows}

    def _ensure(self, conn: psycopg.Connection[Any], schema: TableSchema) -> None:
        if schema.name in self._ready:
            return
        with conn.transaction():
            # one creator at a time: concurrent CREATE TABLE IF NOT EXISTS can still collide
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('quant.store.ddl'))")
            found = self._columns(conn, schema.name)
            if not found:
                conn.execute(create_table_sql(schema))
            else:
                expected = {
                    c.name: (_sql_type(schema, c.dtype)[1], c.nullable and c.name not in schema.key)
                    for c in schema.columns
                }
                check_columns(schema, found, expected)
            if self.timescale and schema.time_column is not None:
                conn.execute(
                    "SELECT create_hypertable(%s::regclass, %s, if_not_exists => TRUE, "
                    "migrate_data => TRUE)",
                    [sql.Identifier(schema.name).as_string(conn), schema.time_column],
                )
        self._ready.add(schema.name)

    # --- writes ---

    def _insert(
        self, conn: psycopg.Connection[Any], schema: TableSchema, frame: pl.DataFrame
    ) -> None:
        if frame.is_empty():
            return
        # in primary-key order, index insertions are appends rather than random page writes
        frame = frame.sort(storage_key(schema))
        binary = binary_layouts(frame) <= MAX_BINARY_LAYOUTS
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
            sql.Identifier(schema.name),
            sql.SQL(", ").join(map(sql.Identifier, schema.column_names)),
            sql.SQL("binary" if binary else "csv"),
        )
        data = binary_copy_data(frame) if binary else csv_copy_data(frame)
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            for block in data:
                copy.write(block)

    def _replace(self, schema: TableSchema, frame: pl.DataFrame, where: sql.Composable) -> None:
        with self._connect() as conn:
            self._ensure(conn, schema)
            with conn.transaction():
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(schema.name)) + where)
                self._insert(conn, schema, frame)

    def replace_window(
        self, schema: TableSchema, frame: pl.DataFrame, start: date, end: date
    ) -> None:
        self._replace(schema, frame, self._where(schema, start, end))

    def replace_all(self, schema: TableSchema, frame: pl.DataFrame) -> None:
        self._replace(schema, frame, sql.SQL(""))

    def drop_table(self, schema: TableSchema) -> None:
        with self._connect() as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema.name)))
        self._ready.discard(schema.name)

    def replace_rows(self, schema: TableSchema, frame: pl.DataFrame, column: str) -> None:
        self._replace(
            schema, frame, self._where(schema, None, None, {column: frame[column].to_list()})
        )

    # --- reads ---

    @staticmethod
    def _where(
        schema: TableSchema,
        start: date | None,
        end: date | None,
        filters: Mapping[str, Sequence[Any]] | None = None,
    ) -> sql.Composable:
        # literals, not parameters: COPY (SELECT ...) takes no bind parameters
        clauses: list[sql.Composable] = []
        if schema.time_column is not None:
            column = sql.Identifier(schema.time_column)
            if start is not None:
                clauses.append(sql.SQL("{} >= {}").format(column, sql.Literal(start)))
            if end is not None:
                clauses.append(sql.SQL("{} < {}").format(column, sql.Literal(end)))
        for name, values in (filters or {}).items():
            clauses.append(
                sql.SQL("{} = ANY({})").format(sql.Identifier(name), sql.Literal(list(values)))
            )
        if not clauses:
            return sql.SQL("")
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses)

    def read(
        self,
        schema: TableSchema,
        columns: Sequence[str],
        start: date | None,
        end: date | None,
        where: Mapping[str, Sequence[Any]],
    ) -> pl.DataFrame:
        # sorted here rather than by the server: its sort spills to disk past work_mem (4 MB)
        fetched = [*columns, *(k for k in schema.key if k not in columns)]
        query = sql.SQL("SELECT {} FROM {}{}").format(
            sql.SQL(", ").join(map(sql.Identifier, fetched)),
            sql.Identifier(schema.name),
            self._where(schema, start, end, where),
        )
        buffer = io.BytesIO()
        with self._connect() as conn:
            self._ensure(conn, schema)
            statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
            with conn.cursor() as cursor, cursor.copy(statement) as copy:
                for block in copy:
                    buffer.write(block)
        dtypes = {c: schema.polars_schema[c] for c in fetched}
        data = buffer.getvalue()
        if not data:
            return pl.DataFrame(schema={c: dtypes[c] for c in columns})
        # booleans come as t/f: read them as text and map
        parse = {c: pl.String() if d == pl.Boolean else d for c, d in dtypes.items()}
        frame = pl.read_csv(data, has_header=False, schema=parse)
        booleans = [c for c, d in dtypes.items() if d == pl.Boolean]
        if booleans:
            frame = frame.with_columns(pl.col(c) == "t" for c in booleans)
        return frame.sort(schema.key).select(columns)

    def date_bounds(self, schema: TableSchema) -> tuple[date, date] | None:
        assert schema.time_column is not None
        column = sql.Identifier(schema.time_column)
        with self._connect() as conn:
            self._ensure(conn, schema)
            row = conn.execute(
                sql.SQL("SELECT min({}), max({}) FROM {}").format(
                    column, column, sql.Identifier(schema.name)
                )
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return row[0], row[1]

    def count(self, schema: TableSchema, start: date | None, end: date | None) -> int:
        with self._connect() as conn:
            self._ensure(conn, schema)
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema.name))
                + self._where(schema, start, end)
            ).fetchone()
        return int(row[0]) if row else 0
