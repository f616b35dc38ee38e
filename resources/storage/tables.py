"""Explicit schemas of every stored table.

A table is declared once here; both backends create it from this declaration, and every write is
checked against it, so a column that changes type or goes missing fails loudly at the write.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    nullable: bool = False


@dataclass(frozen=True)
class TableSchema:
    """A stored table. ``time_column`` is the DATE column partitions replace windows of
    (None for tables that are replaced whole); ``key`` identifies a row (unique per write)."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    time_column: str | None = "date"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})


_PRICE = pl.Float64()

BAR_COLUMNS: tuple[Column, ...] = (
    Column("ticker", pl.String()),
    Column("date", pl.Date()),
    Column("open", _PRICE),
    Column("high", _PRICE),
    Column("low", _PRICE),
    Column("close", _PRICE),
    Column("volume", pl.Float64()),
    Column("adj_open", _PRICE),
    Column("adj_high", _PRICE),
    Column("adj_low", _PRICE),
    Column("adj_close", _PRICE),
    Column("vwap", _PRICE, nullable=True),
)

UNIVERSE = TableSchema(
    name="universe",
    columns=(
        Column("ticker", pl.String()),
        Column("name", pl.String(), nullable=True),
        Column("sector", pl.String()),
        Column("is_benchmark", pl.Boolean()),
    ),
    key=("ticker",),
    time_column=None,
)

RAW_BARS = TableSchema(name="raw_bars", columns=BAR_COLUMNS, key=("ticker", "date"))

RAW_BARS_QUARANTINE = TableSchema(
    name="raw_bars_quarantine",
    columns=(
        *(Column(c.name, c.dtype, nullable=c.name not in ("ticker", "date")) for c in BAR_COLUMNS),
        Column("reason", pl.String()),
    ),
    # one row can break several rules; each broken rule is its own quarantine row
    key=("ticker", "date", "reason"),
)

MACRO_SERIES = TableSchema(
    name="macro_series",
    columns=(
        Column("series_id", pl.String()),
        Column("date", pl.Date()),
        Column("value", pl.Float64()),
    ),
    key=("series_id", "date"),
)

TABLES: dict[str, TableSchema] = {
    t.name: t for t in (UNIVERSE, RAW_BARS, RAW_BARS_QUARANTINE, MACRO_SERIES)
}
