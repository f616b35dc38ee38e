"""Daily bars from Yahoo Finance through ``yfinance`` (no API key).

One ``yf.download`` call per chunk of tickers fetches raw OHLCV and "Adj Close"
(``auto_adjust=False``); ``adj_open/high/low`` are the raw prices scaled by
``adj_close / close``. Yahoo serves no VWAP, so ``vwap`` is null.

yfinance (1.x) does not raise when a ticker fails: a rate-limited (HTTP 429), unknown or delisted
ticker comes back as all-NaN columns, and only a log line says why. So an all-NaN ticker is
treated as a failure of that ticker, never as data: it is fetched again with bounded backoff and,
if it is still empty after the last attempt, ``fetch_bars`` raises ``ProviderError`` naming it.
That includes tickers that did not trade in the window at all (not yet listed, delisted): leave
them out of the request (the committed universe's inactive tickers are left out of
``universe()``).

Dates are the exchange's trading dates (yfinance localises daily bars to the exchange timezone,
America/New_York for US listings). Caching sessions (requests_cache) are rejected by yfinance;
``session`` exists so tests can pass a plain ``requests.Session`` to replay recorded responses.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import pandas as pd
import polars as pl
import requests

from resources.market_data.base import BAR_SCHEMA, conform_bars, normalize_tickers
from resources.market_data.universe_list import load_universe
from resources.retry import call_with_retries

_PRICE_COLUMNS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
}


class _TickersFailed(Exception):
    """Some requested tickers came back from yfinance with no data (all-NaN columns)."""

    def __init__(self, tickers: Sequence[str]) -> None:
        shown = list(tickers[:20]) + (["..."] if len(tickers) > 20 else [])
        super().__init__(
            f"no data for {len(tickers)} ticker(s) {shown} (yfinance returns rate-limited, "
            "unknown and delisted tickers as all-NaN columns)"
        )
        self.tickers = list(tickers)


def _network_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [requests.exceptions.RequestException, OSError]
    try:
        from yfinance.exceptions import YFRateLimitError

        errors.append(YFRateLimitError)
    except ImportError:  # pragma: no cover - yfinance is a dependency
        pass
    try:
        from curl_cffi.requests.exceptions import RequestException as CurlRequestException

        errors.append(CurlRequestException)
    except ImportError:  # pragma: no cover - curl_cffi is optional for yfinance
        pass
    return tuple(errors)


def _clear_yfinance_memory_cache() -> None:
    """yfinance memoises GETs of past date ranges in an in-process LRU cache (``YfData.cache_get``):
    a retry must not be served the failed response again."""
    try:
        from yfinance.data import YfData

        YfData.cache_get.cache_clear()
    except (ImportError, AttributeError):  # pragma: no cover - private API moved
        pass


class YFinanceProvider:
    """``MarketDataProvider`` over Yahoo Finance. ``universe()`` is the committed list's active
    tickers (or the user's file); ``fetch_bars`` is half-open ``[start, end)``."""

    name = "yfinance"
    benchmark_ticker = "SPY"

    def __init__(
        self,
        universe_path: str | None = None,
        attempts: int = 3,
        base_delay: float = 1.0,
        chunk_size: int = 100,
        *,
        threads: bool = False,
        timeout: float = 30,
        session: Any = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.universe_path = universe_path
        self.attempts = attempts
        self.base_delay = base_delay
        self.chunk_size = max(int(chunk_size), 1)
        self.threads = threads
        self.timeout = timeout
        self.session = session
        self.sleep = sleep

    def universe(self) -> pl.DataFrame:
        return load_universe(self.universe_path, benchmark=self.benchmark_ticker, active_only=True)

    def fetch_bars(self, tickers: Sequence[str], start: date, end: date) -> pl.DataFrame:
        wanted = normalize_tickers(tickers)
        if not wanted or start >= end:
            return pl.DataFrame(schema=BAR_SCHEMA)
        frames = [
            self._fetch_chunk(wanted[i : i + self.chunk_size], start, end)
            for i in range(0, len(wanted), self.chunk_size)
        ]
        return conform_bars(pl.concat(frames, how="vertical"))

    def _fetch_chunk(self, chunk: list[str], start: date, end: date) -> pl.DataFrame:
        pending = list(chunk)
        fetched: list[pl.DataFrame] = []

        def attempt() -> None:
            nonlocal pending
            _clear_yfinance_memory_cache()
            bars = _to_long(self._download(pending, start, end), start, end)
            got = set(bars["ticker"].unique().to_list())
            fetched.append(bars.filter(pl.col("ticker").is_in(pending)))
            pending = [t for t in pending if t not in got]
            if pending:
                raise _TickersFailed(pending)

        call_with_retries(
            attempt,
            what=f"yfinance download of {len(chunk)} ticker(s) for [{start}, {end})",
            attempts=self.attempts,
            base_delay=self.base_delay,
            retry_on=(_TickersFailed, *_network_errors()),
            sleep=self.sleep,
        )
        return pl.concat(fetched, how="vertical")

    def _download(self, tickers: list[str], start: date, end: date) -> pd.DataFrame | None:
        import yfinance as yf

        with warnings.catch_warnings():
            # yfinance 1.7 uses pandas APIs deprecated in pandas 3 (inplace=...)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return yf.download(
                tickers,
                start=start.isoformat(),
                end=end.isoformat(),
                interval="1d",
                auto_adjust=False,
                actions=False,
                group_by="column",
                progress=False,
                threads=self.threads,
                timeout=self.timeout,
                session=self.session,
                multi_level_index=True,
            )


_LONG_SCHEMA = pl.Schema(
    {
        "ticker": pl.String(),
        "date": pl.Date(),
        **{name: pl.Float64() for name in _PRICE_COLUMNS.values()},
    }
)


def _to_long(frame: pd.DataFrame | None, start: date, end: date) -> pl.DataFrame:
    """yfinance's wide (Price, Ticker) frame -> one row per (ticker, date) with data, adj_* added.

    Rows with no close (the NaN padding of a failed ticker, or of a ticker on another ticker's
    dates) are dropped, so a ticker that failed is absent from the result."""
    if (
        frame is None
        or frame.empty
        or not isinstance(frame.columns, pd.MultiIndex)
        or "Ticker" not in frame.columns.names
    ):
        return _with_adjusted(pl.DataFrame(schema=_LONG_SCHEMA))
    long = frame.stack(level="Ticker", future_stack=True)
    long.index = long.index.set_names(["date", "ticker"])
    long = long.reset_index()
    long.columns = [str(c) for c in long.columns]
    missing = [c for c in _PRICE_COLUMNS if c not in long.columns]
    if missing:
        return _with_adjusted(pl.DataFrame(schema=_LONG_SCHEMA))
    out = (
        pl.from_pandas(long[["ticker", "date", *_PRICE_COLUMNS]])
        .rename(_PRICE_COLUMNS)
        .with_columns(
            pl.col("ticker").cast(pl.String),
            pl.col("date").cast(pl.Date),
            *(pl.col(c).cast(pl.Float64) for c in _PRICE_COLUMNS.values()),
        )
        .with_columns(pl.col(pl.Float64).fill_nan(None))
        .filter(pl.col("close").is_not_null() & (pl.col("date") >= start) & (pl.col("date") < end))
    )
    return _with_adjusted(out)


def _with_adjusted(out: pl.DataFrame) -> pl.DataFrame:
    """adj_open/high/low = raw * adj_close / close (a missing adj_close: no adjustment known)."""
    out = out.with_columns(pl.coalesce("adj_close", "close").alias("adj_close"))
    factor = pl.col("adj_close") / pl.col("close")
    return out.with_columns(
        (pl.col("open") * factor).alias("adj_open"),
        (pl.col("high") * factor).alias("adj_high"),
        (pl.col("low") * factor).alias("adj_low"),
    )
