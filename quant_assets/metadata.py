"""Metadata every asset shows the same way: a markdown preview and the date range of a frame."""

from __future__ import annotations

import dagster as dg
import polars as pl


def preview(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """The first ``rows`` rows as a markdown table."""
    with pl.Config(
        tbl_formatting="ASCII_MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=rows,
        tbl_cols=-1,
    ):
        return dg.MetadataValue.md(str(frame.head(rows)))


def date_range_metadata(frame: pl.DataFrame, column: str = "date") -> dict[str, str]:
    """``first_date`` and ``last_date`` of ``column`` ("n/a" for an empty frame)."""
    if frame.is_empty():
        return {"first_date": "n/a", "last_date": "n/a"}
    return {"first_date": str(frame[column].min()), "last_date": str(frame[column].max())}
