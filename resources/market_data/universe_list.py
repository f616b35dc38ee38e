"""The tradable universe of the real providers: a committed US large-cap list, or the user's file.

``us_large_caps.csv`` (next to this module) lists US-listed large caps (ADRs included: they are
stocks), the exchange-traded funds a research panel often holds beside them (the 11 SPDR sector
funds, bond, gold and index funds, SPY the benchmark), each with its ``asset_type``, and no
sectors. Its optional ``active`` column marks tickers that no longer trade (acquired, renamed,
delisted): they stay in the list because historical files (the ``files`` provider) still hold
them, and the live providers (yfinance, Alpaca) leave them out (``load_universe(active_only=
True)``).

A user's file (CSV or Parquet) needs the column ``ticker`` (case-insensitive); ``name``,
``sector``, ``asset_type`` and ``active`` are optional, and an empty cell means "not given".

Sectors: the user's file wins where it gives one; otherwise the packaged classification
(``resources.market_data.sectors``: GICS sectors from data shipped in the ``pytickersymbols``
wheel, offline); otherwise the name is ``UNCLASSIFIED`` (each such name is its own group in the
sector cap, see ``quant_core.sectors``). The benchmark's sector is ``"Index"``.

Asset types (``stock``, ``etf``, ``etn``, ``fund``): the file's ``asset_type`` wins; a company the
package lists is a stock; a name that says it is a fund is one; anything else is a stock.
``stock_universe`` keeps the stocks and the benchmark (the benchmark is data, never holdable),
and the non-stocks too when the user asks (``QUANT_UNIVERSE_INCLUDE_ETFS=1``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from quant_core.sectors import UNCLASSIFIED
from resources.market_data.base import UNIVERSE_SCHEMA, ProviderError
from resources.market_data.sectors import ASSET_TYPES, STOCK, asset_type_from_name, classify
from resources.storage.tables import UNIVERSE

COMMITTED_UNIVERSE = Path(__file__).with_name("us_large_caps.csv")
BENCHMARK = "SPY"
BENCHMARK_NAME = "SPDR S&P 500 ETF Trust"
BENCHMARK_SECTOR = "Index"
REQUIRED_COLUMNS = ("ticker",)
OPTIONAL_COLUMNS = ("name", "sector", "asset_type")

log = logging.getLogger("quant.universe")


def load_universe(
    path: str | Path | None = None,
    *,
    benchmark: str = BENCHMARK,
    active_only: bool = False,
    unlisted: Iterable[str] = (),
) -> pl.DataFrame:
    """The universe in ``UNIVERSE_SCHEMA`` (``is_benchmark = ticker == benchmark``), sorted, every
    sector and asset type filled (see the module docstring).

    ``path``: a CSV or Parquet file with a ``ticker`` column; None reads the committed list.
    ``active_only`` drops rows whose ``active`` column is false. ``unlisted``: tickers to add
    when the file does not list them (the files provider's tickers), classified the same way.
    Raises ``ProviderError`` on a missing/unreadable/empty file, a missing ticker column,
    duplicate or empty tickers, or an unknown asset type.
    """
    source = Path(path).expanduser() if path is not None else COMMITTED_UNIVERSE
    frame = _listed(source)
    if active_only:
        frame = frame.filter(pl.col("active"))
    extra = sorted(set(unlisted) - set(frame["ticker"].to_list()) - {benchmark})
    if benchmark not in frame["ticker"]:
        extra.append(benchmark)
    frame = pl.concat([frame, _bare_rows(extra, frame.schema)])
    return _classified(frame, benchmark).sort("ticker")


def _listed(source: Path) -> pl.DataFrame:
    """The file's rows as ``ticker, name, sector, asset_type, active`` (null = not given)."""
    raw = _read(source)
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ProviderError(
            f"universe file {source} lacks column(s) {missing}; expected ticker and optionally "
            f"{', '.join(OPTIONAL_COLUMNS)}, active (found {raw.columns})"
        )
    if raw.height == 0:
        raise ProviderError(f"universe file {source} has no rows")

    frame = raw.select(
        pl.col("ticker").cast(pl.String).str.strip_chars().str.to_uppercase().alias("ticker"),
        *(_text(raw, c).alias(c) for c in OPTIONAL_COLUMNS),
        _active_expr(raw).alias("active"),
    ).with_columns(pl.col("asset_type").str.to_lowercase())
    empty = frame.filter(pl.col("ticker").is_null() | (pl.col("ticker") == ""))
    if empty.height:
        raise ProviderError(f"universe file {source} has {empty.height} row(s) with no ticker")
    duplicated = frame.filter(pl.col("ticker").is_duplicated())["ticker"].unique().sort()
    if duplicated.len():
        raise ProviderError(
            f"universe file {source} lists duplicate tickers: {duplicated.to_list()}"
        )
    unknown = frame.filter(~pl.col("asset_type").is_in(ASSET_TYPES))["asset_type"].unique()
    if unknown.len():
        raise ProviderError(
            f"universe file {source}: unknown asset_type {sorted(unknown.to_list())}; "
            f"use one of {list(ASSET_TYPES)}"
        )
    return frame


def _text(raw: pl.DataFrame, column: str) -> pl.Expr:
    """An optional text column, stripped, with empty cells as null."""
    if column not in raw.columns:
        return pl.lit(None, dtype=pl.String)
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _bare_rows(tickers: list[str], schema: pl.Schema) -> pl.DataFrame:
    """Rows that give nothing but the ticker (active: they trade as far as anyone knows)."""
    return pl.DataFrame(
        {"ticker": tickers, "active": [True] * len(tickers)},
        schema={"ticker": pl.String, "active": pl.Boolean},
    ).select(
        [
            pl.col(n) if n in ("ticker", "active") else pl.lit(None, t).alias(n)
            for n, t in schema.items()
        ]
    )


def _classified(frame: pl.DataFrame, benchmark: str) -> pl.DataFrame:
    """Fill each row's sector and asset type: the file's, else the package's, else the rules."""
    package = classify(frame["ticker"].to_list())
    named = pl.Series(
        "_named", [asset_type_from_name(n) for n in frame["name"].to_list()], dtype=pl.String
    )
    is_benchmark = pl.col("ticker") == benchmark
    benchmark_name = pl.lit(BENCHMARK_NAME if benchmark == BENCHMARK else None, pl.String)
    return (
        frame.with_columns(
            package["listed"].alias("_listed"), package["sector"].alias("_sector"), named
        )
        .with_columns(
            pl.when(is_benchmark)
            .then(pl.col("name").fill_null(benchmark_name))
            .otherwise(pl.col("name"))
            .alias("name"),
            pl.coalesce(
                "sector",
                pl.when(is_benchmark).then(pl.lit(BENCHMARK_SECTOR)),
                "_sector",
                pl.lit(UNCLASSIFIED),
            ).alias("sector"),
            pl.coalesce(
                "asset_type",
                pl.when(pl.col("_listed")).then(pl.lit(STOCK)),
                "_named",
                pl.when(is_benchmark).then(pl.lit("etf")),
                pl.lit(STOCK),
            ).alias("asset_type"),
            is_benchmark.alias("is_benchmark"),
        )
        .select([pl.col(n).cast(t) for n, t in UNIVERSE_SCHEMA.items()])
    )


@dataclass(frozen=True)
class StockUniverse:
    """What ``stock_universe`` kept (the stored universe's columns) and what it left out."""

    members: pl.DataFrame
    non_stocks_left_out: list[str]
    unclassified: list[str]


def stock_universe(universe: pl.DataFrame, *, include_etfs: bool = False) -> StockUniverse:
    """The stocks and the benchmark of ``universe`` (``UNIVERSE_SCHEMA``), plus its non-stocks
    when ``include_etfs``; in the stored universe table's columns. Logs one line with the counts
    (names left out, unclassified names)."""
    keep = pl.col("is_benchmark") | (pl.col("asset_type") == STOCK)
    if include_etfs:
        keep = pl.lit(True)
    kept = universe.filter(keep)
    left_out = universe.filter(~keep)["ticker"].sort().to_list()
    unclassified = (
        kept.filter(~pl.col("is_benchmark") & (pl.col("sector") == UNCLASSIFIED))["ticker"]
        .sort()
        .to_list()
    )
    log.info(_summary(kept.filter(~pl.col("is_benchmark")).height, unclassified, left_out))
    return StockUniverse(kept.select(UNIVERSE.column_names), left_out, unclassified)


def _summary(holdable: int, unclassified: list[str], left_out: list[str]) -> str:
    def names(tickers: list[str]) -> str:
        return ", ".join(tickers[:20]) + (" ..." if len(tickers) > 20 else "")

    line = f"universe: {holdable} holdable names, {len(unclassified)} unclassified"
    if unclassified:
        line += f" (each capped as its own sector group: {names(unclassified)})"
    line += f", {len(left_out)} non-stocks left out"
    if left_out:
        line += f" ({names(left_out)}; QUANT_UNIVERSE_INCLUDE_ETFS=1 keeps them)"
    return line


def _read(source: Path) -> pl.DataFrame:
    if not source.is_file():
        raise ProviderError(f"universe file {source} does not exist")
    suffix = source.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.read_parquet(source)
        if suffix in (".csv", ".txt"):
            return pl.read_csv(source, infer_schema=False)
    except pl.exceptions.NoDataError as exc:
        raise ProviderError(f"universe file {source} is empty") from exc
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ProviderError(f"cannot read universe file {source}: {exc}") from exc
    raise ProviderError(f"universe file {source}: expected a .csv or .parquet file")


def _active_expr(raw: pl.DataFrame) -> pl.Expr:
    if "active" not in raw.columns:
        return pl.lit(True)
    if raw.schema["active"] == pl.Boolean:
        return pl.col("active").fill_null(True)
    text = pl.col("active").cast(pl.String).str.strip_chars().str.to_lowercase()
    return ~text.is_in(["false", "0", "no", "n", "f"]).fill_null(False)
