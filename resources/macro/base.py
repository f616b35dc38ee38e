"""The macro-data interface and its output schema (the ``macro_series`` table's columns).

Windows are half-open like everywhere in the platform: observations dated in ``[start, end)``.
Missing observations (FRED's ``"."``, e.g. on bond-market holidays) are dropped, never stored as
NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol, runtime_checkable

import polars as pl

from resources.market_data.base import ProviderError
from resources.storage.tables import MACRO_SERIES

# 10y and 2y Treasury constant-maturity yields (%), their spread (pp), the VIX close, and the
# civilian unemployment rate (%, monthly, dated the first of the month)
MACRO_SERIES_IDS: tuple[str, ...] = ("DGS10", "DGS2", "T10Y2Y", "VIXCLS", "UNRATE")

MACRO_SCHEMA = MACRO_SERIES.polars_schema


@runtime_checkable
class MacroProvider(Protocol):
    name: str

    def fetch(self, series_ids: Sequence[str], start: date, end: date) -> pl.DataFrame:
        """Observations of ``series_ids`` dated in ``[start, end)``, in ``MACRO_SCHEMA``
        (series_id, date, value), missing values dropped; failures raise ProviderError."""
        ...


def conform_macro(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast to ``MACRO_SCHEMA``, drop missing (null/NaN) values, sort by series and date."""
    missing = [c for c in MACRO_SCHEMA.names() if c not in frame.columns]
    if missing:
        raise ProviderError(f"macro provider returned observations without columns {missing}")
    return (
        frame.select([pl.col(n).cast(t) for n, t in MACRO_SCHEMA.items()])
        .with_columns(pl.col("value").fill_nan(None))
        .drop_nulls()
        .sort("series_id", "date")
    )


def empty_macro() -> pl.DataFrame:
    return pl.DataFrame(schema=MACRO_SCHEMA)
