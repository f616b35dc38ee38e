"""Metadata every asset and check shows the same way: a markdown preview, the date range of a
frame, and the result of a check that could not measure."""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl

# the word every surface (check metadata, PDF, dashboard) shows for what could not be measured
NOT_EVALUATED = "NOT EVALUATED"


def not_evaluated(reason: str, **metadata: Any) -> dg.AssetCheckResult:
    """A check that could not measure: failed at WARN (which never blocks), saying so and why;
    never a pass."""
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"status": NOT_EVALUATED, "reason": reason, **metadata},
    )


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
