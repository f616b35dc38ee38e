"""Daily bars from the user's own CSV or Parquet files (offline, no key).

``path`` is one file or a directory whose ``*.csv`` / ``*.parquet`` files (not recursive) are read
together. Files are in long format, one row per (ticker, date), with at least the columns
``ticker, date, open, high, low, close, volume``. Column names are case-insensitive and
``symbol`` is accepted for ``ticker``; ``adj_close`` (or ``adj close`` / ``adjclose``) and
``vwap`` are optional: with an adjusted close the other adjusted prices are the raw ones scaled by
``adj_close / close``; without one the adjusted prices equal the raw ones, and a missing vwap is
null. ``date`` may be a date, a datetime (a timezone-aware one is taken in America/New_York) or a
string (``YYYY-MM-DD``, optionally followed by a time).

Files are scanned lazily with polars, so the ticker and ``[start, end)`` filters are pushed down
into the scan. Ticker symbols are upper-cased. A (ticker, date) that appears twice is an error.

``universe()`` is every ticker present in the files, with the name, sector and asset type the
committed list (or the user's universe file) gives it; a ticker the list does not name is
classified like any other (the packaged sector classification, else ``Unclassified``; see
``universe_list``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

from resources.market_data.base import BAR_SCHEMA, ProviderError, conform_bars, normalize_tickers
from resources.market_data.universe_list import load_universe

REQUIRED = ("ticker", "date", "open", "high", "low", "close", "volume")
OPTIONAL = ("adj_close", "vwap")
ALIASES = {
    "symbol": "ticker",
    "adj close": "adj_close",
    "adjclose": "adj_close",
    "adjusted_close": "adj_close",
    "adj_close": "adj_close",
}
NEW_YORK = "America/New_York"


class FilesProvider:
    """``MarketDataProvider`` over CSV/Parquet files; see the module docstring for the format."""

    name = "files"
    benchmark_ticker = "SPY"

    def __init__(self, path: str | Path, universe_path: str | None = None) -> None:
        self.path = Path(path).expanduser()
        self.universe_path = universe_path
        self._files = _list_files(self.path)

    def universe(self) -> pl.DataFrame:
        present = self._scan().select("ticker").unique().collect()["ticker"].drop_nulls()
        listed = load_universe(
            self.universe_path, benchmark=self.benchmark_ticker, unlisted=present.to_list()
        )
        return listed.filter(pl.col("ticker").is_in(present.implode()))

    def fetch_bars(self, tickers: Sequence[str], start: date, end: date) -> pl.DataFrame:
        wanted = normalize_tickers(tickers)
        if not wanted or start >= end:
            return pl.DataFrame(schema=BAR_SCHEMA)
        try:
            bars = (
                self._scan()
                .filter(
                    pl.col("ticker").is_in(wanted)
                    & (pl.col("date") >= start)
                    & (pl.col("date") < end)
                )
                .collect()
            )
        except pl.exceptions.PolarsError as exc:
            raise ProviderError(f"files provider: cannot read {self.path}: {exc}") from exc
        duplicated = bars.filter(pl.struct("ticker", "date").is_duplicated())
        if duplicated.height:
            sample = duplicated.select("ticker", "date").unique().sort("ticker", "date").head(5)
            raise ProviderError(
                f"files provider: {duplicated.height} rows in {self.path} repeat a (ticker, date), "
                f"e.g. {sample.rows()}"
            )
        if "adj_close" in bars.columns:
            factor = pl.col("adj_close") / pl.col("close")
            bars = bars.with_columns(
                (pl.col("open") * factor).alias("adj_open"),
                (pl.col("high") * factor).alias("adj_high"),
                (pl.col("low") * factor).alias("adj_low"),
            )
        return conform_bars(bars)

    # ------------------------------------------------------------------ internals

    def _scan(self) -> pl.LazyFrame:
        frames = [_scan_file(f) for f in self._files]
        if len(frames) == 1:
            return frames[0]
        return pl.concat(frames, how="diagonal_relaxed")


def _list_files(path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix.lower() not in (".csv", ".parquet"):
            raise ProviderError(f"files provider: {path} is not a .csv or .parquet file")
        return [path]
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".parquet")
        )
        if not files:
            raise ProviderError(f"files provider: no *.csv or *.parquet files in {path}")
        return files
    raise ProviderError(f"files provider: {path} does not exist")


def _scan_file(path: Path) -> pl.LazyFrame:
    try:
        if path.suffix.lower() == ".parquet":
            lazy = pl.scan_parquet(path)
        else:
            lazy = pl.scan_csv(path, infer_schema_length=10_000)
        schema = lazy.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ProviderError(f"files provider: cannot read {path}: {exc}") from exc

    renames: dict[str, str] = {}
    for column in schema.names():
        key = column.strip().lower()
        target = ALIASES.get(key, key)
        if target in REQUIRED or target in OPTIONAL:
            if target in renames.values():
                raise ProviderError(
                    f"files provider: {path} has more than one column for {target!r}"
                )
            renames[column] = target
    missing = [c for c in REQUIRED if c not in renames.values()]
    if missing:
        raise ProviderError(
            f"files provider: {path} lacks required column(s) {missing}; needs "
            f"{list(REQUIRED)} (case-insensitive, 'symbol' accepted for 'ticker'), "
            f"found {schema.names()}"
        )
    dtypes = {renames[c]: schema[c] for c in renames}
    floats = [c for c in (*REQUIRED[2:], *OPTIONAL) if c in dtypes]
    return (
        lazy.select(list(renames))
        .rename(renames)
        .with_columns(
            pl.col("ticker").cast(pl.String).str.strip_chars().str.to_uppercase(),
            _date_expr(dtypes["date"]).alias("date"),
            *(pl.col(c).cast(pl.Float64) for c in floats),
        )
    )


def _date_expr(dtype: pl.DataType) -> pl.Expr:
    column = pl.col("date")
    if dtype == pl.Date:
        return column
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            column = column.dt.convert_time_zone(NEW_YORK)
        return column.dt.date()
    # strings (or anything else): the leading YYYY-MM-DD
    return (
        column.cast(pl.String)
        .str.strip_chars()
        .str.slice(0, 10)
        .str.strptime(pl.Date, "%Y-%m-%d", strict=True)
    )
