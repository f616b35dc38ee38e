"""The tradable universe of the real providers: a committed US large-cap list, or the user's file.

``us_large_caps.csv`` (next to this module) lists US-listed large caps with their GICS sector,
the 11 SPDR sector ETFs (sector = the sector they track) and SPY (sector ``"Index"``, the
benchmark). Its optional ``active`` column marks tickers that no longer trade (acquired,
renamed, delisted): they stay in the list because historical files (the ``files`` provider)
still hold them, and the live providers (yfinance, Alpaca) leave them out
(``load_universe(active_only=True)``).

A user's file (CSV or Parquet) needs the columns ``ticker`` and ``sector`` (case-insensitive);
``name`` and ``active`` are optional. The benchmark is appended (sector ``"Index"``) when the file
does not list it, so every universe carries its benchmark.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from resources.market_data.base import UNIVERSE_SCHEMA, ProviderError

COMMITTED_UNIVERSE = Path(__file__).with_name("us_large_caps.csv")
BENCHMARK = "SPY"
BENCHMARK_NAME = "SPDR S&P 500 ETF Trust"
BENCHMARK_SECTOR = "Index"
REQUIRED_COLUMNS = ("ticker", "sector")


def load_universe(
    path: str | Path | None = None,
    *,
    benchmark: str = BENCHMARK,
    active_only: bool = False,
) -> pl.DataFrame:
    """The universe in ``UNIVERSE_SCHEMA`` (``is_benchmark = ticker == benchmark``), sorted.

    ``path``: a CSV or Parquet file with ``ticker,name,sector`` columns; None reads the
    committed list. ``active_only`` drops rows whose ``active`` column is false.
    Raises ``ProviderError`` on a missing/unreadable/empty file, missing columns, duplicate
    tickers or empty tickers/sectors.
    """
    source = Path(path).expanduser() if path is not None else COMMITTED_UNIVERSE
    raw = _read(source)
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ProviderError(
            f"universe file {source} lacks column(s) {missing}; "
            f"expected ticker,name,sector (found {raw.columns})"
        )
    if raw.height == 0:
        raise ProviderError(f"universe file {source} has no rows")

    frame = raw.select(
        pl.col("ticker").cast(pl.String).str.strip_chars().str.to_uppercase().alias("ticker"),
        (
            pl.col("name").cast(pl.String).str.strip_chars()
            if "name" in raw.columns
            else pl.lit(None, dtype=pl.String)
        ).alias("name"),
        pl.col("sector").cast(pl.String).str.strip_chars().alias("sector"),
        _active_expr(raw).alias("active"),
    )
    empty = frame.filter(
        pl.col("ticker").is_null()
        | (pl.col("ticker") == "")
        | pl.col("sector").is_null()
        | (pl.col("sector") == "")
    )
    if empty.height:
        raise ProviderError(
            f"universe file {source} has {empty.height} row(s) with an empty ticker or sector"
        )
    duplicated = frame.filter(pl.col("ticker").is_duplicated())["ticker"].unique().sort()
    if duplicated.len():
        raise ProviderError(
            f"universe file {source} lists duplicate tickers: {duplicated.to_list()}"
        )

    if active_only:
        frame = frame.filter(pl.col("active"))
    if benchmark not in frame["ticker"]:
        frame = pl.concat(
            [
                frame,
                pl.DataFrame(
                    {
                        "ticker": [benchmark],
                        "name": [BENCHMARK_NAME if benchmark == BENCHMARK else None],
                        "sector": [BENCHMARK_SECTOR],
                        "active": [True],
                    },
                    schema=frame.schema,
                ),
            ]
        )
    return (
        frame.with_columns((pl.col("ticker") == benchmark).alias("is_benchmark"))
        .select([pl.col(n).cast(t) for n, t in UNIVERSE_SCHEMA.items()])
        .sort("ticker")
    )


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
