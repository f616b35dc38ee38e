"""DuckDB backend: one database file, Arrow in and out.

DuckDB lets one process at a time open a file. Here a process keeps it open only while it works:
the database closes once unused for ``IDLE_CLOSE_S`` (1 s), at the end of every Dagster step
(``Store.teardown_after_execution``) and at exit, and opening it waits (with backoff, up to
``LOCK_TIMEOUT_S``) while another process holds it. So a Dagster UI process and a CLI run take
turns instead of failing or deadlocking.

Readers never take that turn. A writer that changed the file publishes a consistent copy of it
(``quant.duckdb.snapshot`` beside it: checkpointed, copied and renamed into place while the
writer still holds the file) when it closes the file at the end of a step or at exit, and on an
idle close at most every ``SNAPSHOT_INTERVAL_S``. A reader store (``Store(reader=True)``:
the API and the dashboard) opens that copy read-only, many processes at once, and reopens it
when a newer one has been renamed into place; it never opens the pipeline's file, so a
pipeline write never waits for a reader and a reader never waits for a run.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from resources.storage.store import SchemaError, check_columns, storage_key
from resources.storage.tables import TableSchema

logger = logging.getLogger("quant.store")

# polars dtype -> (type in CREATE TABLE, type as information_schema reports it)
_TYPES: dict[pl.DataType, tuple[str, str]] = {
    pl.String(): ("VARCHAR", "VARCHAR"),
    pl.Date(): ("DATE", "DATE"),
    pl.Float64(): ("DOUBLE", "DOUBLE"),
    pl.Float32(): ("REAL", "FLOAT"),
    pl.Int64(): ("BIGINT", "BIGINT"),
    pl.Int32(): ("INTEGER", "INTEGER"),
    pl.Int16(): ("SMALLINT", "SMALLINT"),
    pl.Int8(): ("TINYINT", "TINYINT"),
    pl.Boolean(): ("BOOLEAN", "BOOLEAN"),
}

LOCK_TIMEOUT_S = 300.0
"""How long opening the file waits for another process that holds it."""

IDLE_CLOSE_S = 1.0
"""The database closes (releasing the file to other processes) after this long unused;
0 closes it after every operation."""

SNAPSHOT_INTERVAL_S = 30.0
"""An idle close publishes the readers' snapshot at most this often (an explicit close, at the
end of a step or at exit, always publishes what changed)."""


def snapshot_path(path: Path) -> Path:
    """Where the readers' copy of the database ``path`` lives."""
    return path.with_name(path.name + ".snapshot")


def _publish(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Checkpoint the open database ``path`` and copy it into place for readers; the caller
    holds the file, so nothing writes it meanwhile, and the rename makes the copy atomic."""
    started = time.perf_counter()
    con.execute("CHECKPOINT")
    target = snapshot_path(path)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.copyfile(path, partial)
    os.replace(partial, target)
    logger.debug("store: snapshot of %s in %.3f s", path, time.perf_counter() - started)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_type(schema: TableSchema, dtype: pl.DataType) -> tuple[str, str]:
    try:
        return _TYPES[dtype]
    except KeyError:
        raise SchemaError(f"{schema.name}: no DuckDB type for {dtype}") from None


def create_table_sql(schema: TableSchema) -> str:
    columns = [
        f"{_q(c.name)} {_sql_type(schema, c.dtype)[0]}"
        + ("" if c.nullable and c.name not in schema.key else " NOT NULL")
        for c in schema.columns
    ]
    columns.append(f"PRIMARY KEY ({', '.join(_q(k) for k in storage_key(schema))})")
    return f"CREATE TABLE IF NOT EXISTS {_q(schema.name)} (\n  " + ",\n  ".join(columns) + "\n)"


def _open(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting (with backoff, up to LOCK_TIMEOUT_S) while another process holds it."""
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            logger.debug("store: %s is locked by another process; retrying", path)
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class _SharedFile:
    """One open database per file and process, closed after IDLE_CLOSE_S without use.

    Opening and closing a DuckDB database cost more than a 60-day read (README, "Benchmarks"),
    so consecutive operations share it; each operation works on its own cursor (a cheap
    connection to the same database, safe to use from its own thread). Once nothing ran for
    IDLE_CLOSE_S the database is closed, which releases the file for other processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.con: duckdb.DuckDBPyConnection | None = None
        self.active = 0
        self.generation = 0  # bumped at every use, so a stale idle timer does nothing
        self.dirty = False  # written since the last snapshot
        self.published = time.monotonic()

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.lock:
            if self.con is None:
                self.con = _open(self.path)
            self.active += 1
            self.generation += 1
            cursor = self.con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            with self.lock:
                self.active -= 1
                self.generation += 1
                if self.active == 0:
                    if IDLE_CLOSE_S <= 0:
                        self._close(publish=False)
                    else:
                        timer = threading.Timer(
                            IDLE_CLOSE_S, self._close_if_idle, [self.generation]
                        )
                        timer.daemon = True
                        timer.start()

    def _close_if_idle(self, generation: int) -> None:
        with self.lock:
            if self.active == 0 and self.generation == generation:
                due = time.monotonic() - self.published >= SNAPSHOT_INTERVAL_S
                self._close(publish=due)

    def _close(self, publish: bool) -> None:
        if publish and self.dirty:
            if self.con is None:
                self.con = _open(self.path)
            _publish(self.con, self.path)
            self.dirty, self.published = False, time.monotonic()
        if self.con is not None:
            self.con.close()
            self.con = None

    def close(self) -> None:
        """Close now if idle (else the last operation's idle timer does), publishing the
        readers' snapshot first when something was written."""
        with self.lock:
            if self.active == 0:
                self._close(publish=True)


class _Snapshot:
    """A reader's read-only connection to the snapshot of ``path``, reopened when a newer
    snapshot has been renamed into place (readers of the old one keep reading it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.con: duckdb.DuckDBPyConnection | None = None
        self.identity: tuple[int, int] | None = None
        self.users: dict[int, int] = {}  # cursors in use per open connection

    def _current(self) -> tuple[int, int]:
        target = snapshot_path(self.path)
        if not target.exists():
            # nothing published yet (a store written before snapshots, or never written)
            shared = _shared(self.path)
            with shared.lock:
                shared.dirty = True
                shared._close(publish=True)
        stat = target.stat()
        return stat.st_ino, stat.st_mtime_ns

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.lock:
            identity = self._current()
            if self.con is None or identity != self.identity:
                self._retire()
                self.con = duckdb.connect(str(snapshot_path(self.path)), read_only=True)
                self.identity = identity
            con = self.con
            self.users[id(con)] = self.users.get(id(con), 0) + 1
            cursor = con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            with self.lock:
                self.users[id(con)] -= 1
                if con is not self.con and self.users[id(con)] == 0:
                    del self.users[id(con)]
                    con.close()  # the last reader of an older snapshot is done

    def _retire(self) -> None:
        """Stop handing out the current connection; closed now if nobody reads through it."""
        if self.con is not None and self.users.get(id(self.con), 0) == 0:
            self.users.pop(id(self.con), None)
            self.con.close()
        self.con = None


_FILES: dict[Path, _SharedFile] = {}
_FILES_LOCK = threading.Lock()


def _shared(path: Path) -> _SharedFile:
    with _FILES_LOCK:
        shared = _FILES.get(path)
        if shared is None or shared.pid != os.getpid():  # never reuse a parent's handle
            shared = _FILES[path] = _SharedFile(path)
        return shared


_SNAPSHOTS: dict[Path, _Snapshot] = {}


def _snapshot(path: Path) -> _Snapshot:
    with _FILES_LOCK:
        snapshot = _SNAPSHOTS.get(path)
        if snapshot is None or snapshot.pid != os.getpid():
            snapshot = _SNAPSHOTS[path] = _Snapshot(path)
        return snapshot


@atexit.register
def close_all() -> None:
    """Close every idle DuckDB database this process holds open."""
    with _FILES_LOCK:
        files = [f for f in _FILES.values() if f.pid == os.getpid()]
    for shared in files:
        shared.close()


class DuckDBBackend:
    name = "duckdb"

    def __init__(self, path: str, reads_snapshot: bool = False) -> None:
        if path.strip() in ("", ":memory:") or path.startswith(":memory:"):
            raise ValueError(
                "an in-memory DuckDB store is not supported (the database is closed when idle); "
                "give a file path"
            )
        self.path = Path(path).expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.reads_snapshot = reads_snapshot
        self._ready: set[str] = set()  # tables created or checked against their schema
        self._absent: set[str] = set()  # tables a snapshot does not hold (yet)
        logger.info("store: DuckDB file %s%s", self.path, " (snapshot reader)" * reads_snapshot)

    # --- connections ---

    def _connect(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        if self.reads_snapshot:
            return _snapshot(self.path).cursor()
        return _shared(self.path).cursor()

    def close(self) -> None:
        """Release the file now if no operation is running (other processes may then open it)."""
        if not self.reads_snapshot:
            _shared(self.path).close()

    def _ensure(self, con: duckdb.DuckDBPyConnection, schema: TableSchema) -> None:
        if schema.name in self._ready:
            return
        existing = con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = current_schema() "
            "AND table_name = ? ORDER BY ordinal_position",
            [schema.name],
        ).fetchall()
        if not existing and self.reads_snapshot:
            self._absent.add(schema.name)  # a later snapshot may hold it: asked again then
            return
        if not existing:
            con.execute(create_table_sql(schema))
        else:
            found = {name: (dtype.upper(), nullable == "YES") for name, dtype, nullable in existing}
            expected = {
                c.name: (_sql_type(schema, c.dtype)[1], c.nullable and c.name not in schema.key)
                for c in schema.columns
            }
            check_columns(schema, found, expected)
        self._absent.discard(schema.name)
        self._ready.add(schema.name)

    # --- writes ---

    def _insert(
        self, con: duckdb.DuckDBPyConnection, schema: TableSchema, frame: pl.DataFrame
    ) -> None:
        if frame.is_empty():
            return
        if schema.time_column is not None and not frame[schema.time_column].is_sorted():
            # stored in date order, the zone maps let a date-range read skip most of the file
            frame = frame.sort(schema.time_column, maintain_order=True)
        names = ", ".join(_q(c) for c in schema.column_names)
        con.register("_quant_frame", frame.to_arrow())
        try:
            con.execute(f"INSERT INTO {_q(schema.name)} ({names}) SELECT {names} FROM _quant_frame")
        finally:
            con.unregister("_quant_frame")

    def _replace(
        self,
        schema: TableSchema,
        frame: pl.DataFrame,
        where: str,
        params: list[Any],
    ) -> None:
        with self._connect() as con:
            self._ensure(con, schema)
            con.begin()
            try:
                con.execute(f"DELETE FROM {_q(schema.name)}{where}", params)
                self._insert(con, schema, frame)
                con.commit()
            except BaseException:
                con.rollback()
                raise
            _shared(self.path).dirty = True  # before the operation ends, so any close publishes

    def replace_window(
        self, schema: TableSchema, frame: pl.DataFrame, start: date, end: date
    ) -> None:
        assert schema.time_column is not None
        t = _q(schema.time_column)
        self._replace(schema, frame, f" WHERE {t} >= ? AND {t} < ?", [start, end])

    def replace_all(self, schema: TableSchema, frame: pl.DataFrame) -> None:
        self._replace(schema, frame, "", [])

    def drop_table(self, schema: TableSchema) -> None:
        with self._connect() as con:
            con.execute(f"DROP TABLE IF EXISTS {_q(schema.name)}")
            _shared(self.path).dirty = True
        self._ready.discard(schema.name)

    def replace_rows(self, schema: TableSchema, frame: pl.DataFrame, column: str) -> None:
        values = frame[column].to_list()
        self._replace(schema, frame, f" WHERE list_contains(?, {_q(column)})", [values])

    # --- reads ---

    def _where(
        self,
        schema: TableSchema,
        start: date | None,
        end: date | None,
        filters: Mapping[str, Sequence[Any]] | None = None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if schema.time_column is not None:
            if start is not None:
                clauses.append(f"{_q(schema.time_column)} >= ?")
                params.append(start)
            if end is not None:
                clauses.append(f"{_q(schema.time_column)} < ?")
                params.append(end)
        for column, values in (filters or {}).items():
            clauses.append(f"list_contains(?, {_q(column)})")
            params.append(list(values))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def read(
        self,
        schema: TableSchema,
        columns: Sequence[str],
        start: date | None,
        end: date | None,
        where: Mapping[str, Sequence[Any]],
    ) -> pl.DataFrame:
        clause, params = self._where(schema, start, end, where)
        order = ", ".join(_q(k) for k in schema.key)
        query = (
            f"SELECT {', '.join(_q(c) for c in columns)} FROM {_q(schema.name)}{clause} "
            f"ORDER BY {order}"
        )
        with self._connect() as con:
            self._ensure(con, schema)
            if schema.name in self._absent:
                return pl.DataFrame(schema={c: schema.polars_schema[c] for c in columns})
            return con.sql(query, params=params).pl()

    def date_bounds(self, schema: TableSchema) -> tuple[date, date] | None:
        assert schema.time_column is not None
        t = _q(schema.time_column)
        with self._connect() as con:
            self._ensure(con, schema)
            if schema.name in self._absent:
                return None
            row = con.execute(f"SELECT min({t}), max({t}) FROM {_q(schema.name)}").fetchone()
        if row is None or row[0] is None:
            return None
        return row[0], row[1]

    def count(self, schema: TableSchema, start: date | None, end: date | None) -> int:
        clause, params = self._where(schema, start, end)
        with self._connect() as con:
            self._ensure(con, schema)
            if schema.name in self._absent:
                return 0
            row = con.execute(f"SELECT count(*) FROM {_q(schema.name)}{clause}", params).fetchone()
        return int(row[0]) if row else 0
