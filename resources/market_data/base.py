"""The one market-data interface every provider implements, and its one output schema.

Date ranges are half-open everywhere in the platform: ``start`` inclusive, ``end`` exclusive,
the same convention as Dagster's time windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol, runtime_checkable

import polars as pl

from resources.storage.tables import BAR_COLUMNS, UNIVERSE

BAR_SCHEMA = pl.Schema({c.name: c.dtype for c in BAR_COLUMNS})
# a provider's universe: the stored table's columns and each ticker's asset type (stock, etf,
# ...), which decides whether it is held (see universe_list.stock_universe)
UNIVERSE_SCHEMA = pl.Schema(
    {**{c.name: c.dtype for c in UNIVERSE.columns}, "asset_type": pl.String()}
)


GICS_SECTORS: tuple[str, ...] = (
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
    "Energy",
    "Financials",
    "Health Care",
    "Industrials",
    "Information Technology",
    "Materials",
    "Real Estate",
    "Utilities",
)


def normalize_tickers(tickers: Sequence[str]) -> list[str]:
    """Upper-cased, stripped, de-duplicated tickers in their first order; blanks dropped."""
    return list(dict.fromkeys(t.strip().upper() for t in tickers if t and t.strip()))


class ProviderError(RuntimeError):
    """A provider could not deliver data (network, rate limit, credentials, bad response).

    Raised after the bounded retries are spent; the message names the provider and the cause.
    """


@runtime_checkable
class MarketDataProvider(Protocol):
    name: str
    benchmark_ticker: str

    def universe(self) -> pl.DataFrame:
        """Tickers this provider serves by default, in ``UNIVERSE_SCHEMA`` (benchmark included)."""
        ...

    def fetch_bars(self, tickers: Sequence[str], start: date, end: date) -> pl.DataFrame:
        """Daily bars for ``tickers`` on dates in ``[start, end)``, in ``BAR_SCHEMA``.

        Tickers the provider has no data for are simply absent; failures raise ProviderError.
        """
        ...


def conform_bars(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast a provider's frame to ``BAR_SCHEMA`` (column order and types); vwap may be absent."""
    if "vwap" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("vwap"))
    for prefix in ("open", "high", "low", "close"):
        if f"adj_{prefix}" not in frame.columns:
            frame = frame.with_columns(pl.col(prefix).alias(f"adj_{prefix}"))
    missing = [c for c in BAR_SCHEMA.names() if c not in frame.columns]
    if missing:
        raise ProviderError(f"provider returned bars without columns {missing}")
    return frame.select([pl.col(name).cast(dtype) for name, dtype in BAR_SCHEMA.items()]).sort(
        "ticker", "date"
    )
