"""The ``MarketData`` Dagster resource: picks one provider by name, configured explicitly."""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from resources.market_data.base import MarketDataProvider, ProviderError

PROVIDERS = ("synthetic", "yfinance", "alpaca", "files")


class MarketData(dg.ConfigurableResource):
    """Daily bars from ``synthetic`` (offline default), ``yfinance``, ``alpaca`` or ``files``."""

    provider: str = Field(default="synthetic", description=f"one of {PROVIDERS}")
    seed: int = Field(default=7, description="synthetic: random seed of the market")
    n_tickers: int = Field(default=100, description="synthetic: universe size")
    missing_day_rate: float = Field(
        default=0.0, description="synthetic fault injection: share of (ticker, day) rows dropped"
    )
    decimal_shift_rate: float = Field(
        default=0.0, description="synthetic fault injection: share of decimal-shifted prints"
    )
    files_path: str | None = Field(default=None, description="files: CSV/Parquet file or dir")
    universe_path: str | None = Field(
        default=None,
        description="real providers: CSV/Parquet (ticker, optional name, sector, asset_type, "
        "active) replacing the committed list",
    )
    include_etfs: bool = Field(
        default=False,
        description="keep ETFs and other non-stocks in the universe as holdable names "
        "(QUANT_UNIVERSE_INCLUDE_ETFS=1); by default only stocks (ADRs included) and the benchmark",
    )
    alpaca_api_key: str | None = Field(default=None, description="alpaca: ALPACA_API_KEY")
    alpaca_secret_key: str | None = Field(default=None, description="alpaca: ALPACA_SECRET_KEY")
    alpaca_feed: str = Field(default="iex", description="alpaca: iex (free) or sip")
    retry_attempts: int = Field(default=3, description="attempts per provider call")
    chunk_days: int = Field(
        default=366, description="calendar days per provider call in a multi-year backfill"
    )

    def get_provider(self) -> MarketDataProvider:
        if self.provider == "synthetic":
            from resources.market_data.synthetic import SyntheticMarket

            return SyntheticMarket(
                seed=self.seed,
                n_tickers=self.n_tickers,
                missing_day_rate=self.missing_day_rate,
                decimal_shift_rate=self.decimal_shift_rate,
            )
        if self.provider == "yfinance":
            from resources.market_data.yfinance_provider import YFinanceProvider

            return YFinanceProvider(universe_path=self.universe_path, attempts=self.retry_attempts)
        if self.provider == "alpaca":
            from resources.market_data.alpaca_provider import AlpacaProvider

            if not (self.alpaca_api_key and self.alpaca_secret_key):
                raise ProviderError(
                    "alpaca provider needs ALPACA_API_KEY and ALPACA_SECRET_KEY to be set"
                )
            return AlpacaProvider(
                api_key=self.alpaca_api_key,
                secret_key=self.alpaca_secret_key,
                feed=self.alpaca_feed,
                universe_path=self.universe_path,
                attempts=self.retry_attempts,
            )
        if self.provider == "files":
            from resources.market_data.files_provider import FilesProvider

            if not self.files_path:
                raise ProviderError("files provider needs QUANT_FILES_PATH (a file or directory)")
            return FilesProvider(path=self.files_path, universe_path=self.universe_path)
        raise ProviderError(
            f"unknown market data provider {self.provider!r}; use one of {PROVIDERS}"
        )

    def fetch_bars_chunked(
        self, provider: MarketDataProvider, tickers: list[str], start: date, end: date
    ) -> pl.DataFrame:
        """One provider call per ``chunk_days`` of ``[start, end)``, so a multi-year backfill is
        a handful of calls, and a failure names the chunk it happened in."""
        span = max(self.chunk_days, 1)
        frames = []
        cursor = start
        while cursor < end:
            chunk_end = min(date.fromordinal(cursor.toordinal() + span), end)
            frames.append(provider.fetch_bars(tickers, cursor, chunk_end))
            cursor = chunk_end
        frames = [f for f in frames if f.height]
        if not frames:
            from resources.market_data.base import BAR_SCHEMA

            return pl.DataFrame(schema=BAR_SCHEMA)
        return pl.concat(frames, how="vertical")
