"""Daily bars from Alpaca's market-data API (alpaca-py ``StockHistoricalDataClient``).

Prices, honestly: with ``adjustment="all"`` Alpaca returns OHLC already adjusted for splits and
dividends, so a single request could not fill both the raw and the adjusted columns. This
provider makes two requests per chunk of tickers: ``adjustment="raw"`` fills
``open/high/low/close/volume/vwap`` (the prices actually traded) and ``adjustment=<adjustment>``
(``"all"`` by default; ``"split"`` or ``"dividend"`` also work) fills
``adj_open/adj_high/adj_low/adj_close``. With ``adjustment="raw"`` one request is made and the
``adj_*`` columns equal the raw prices.

Free accounts must use ``feed="iex"`` (the IEX exchange only, so volumes are IEX volumes, a few
percent of the consolidated tape); ``"sip"`` needs a paid subscription. Daily bars are stamped at
midnight America/New_York (04:00/05:00 UTC); the date is that New York trading date. Alpaca
itself retries HTTP 429/504; network errors and 5xx responses are retried here with bounded
backoff; 401/403 (bad keys, or a feed the subscription does not cover) fail at once. The secret
key never appears in an error message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import requests

from resources.market_data.base import BAR_SCHEMA, ProviderError, conform_bars, normalize_tickers
from resources.market_data.universe_list import load_universe
from resources.retry import call_with_retries

NEW_YORK = ZoneInfo("America/New_York")

_BAR_STRUCT = pl.Struct(
    {
        "t": pl.String(),
        "o": pl.Float64(),
        "h": pl.Float64(),
        "l": pl.Float64(),
        "c": pl.Float64(),
        "v": pl.Float64(),
        "vw": pl.Float64(),
    }
)
_RAW_SCHEMA = pl.Schema({"ticker": pl.String(), "bars": pl.List(_BAR_STRUCT)})


class AlpacaProvider:
    """``MarketDataProvider`` over Alpaca. ``universe()`` is the committed list's active tickers
    (or the user's file); ``fetch_bars`` is half-open ``[start, end)``."""

    name = "alpaca"
    benchmark_ticker = "SPY"

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        feed: str = "iex",
        adjustment: str = "all",
        universe_path: str | None = None,
        attempts: int = 3,
        base_delay: float = 1.0,
        chunk_size: int = 200,
        *,
        url_override: str | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        from alpaca.data.enums import Adjustment, DataFeed

        if not api_key or not secret_key:
            raise ProviderError("alpaca provider needs ALPACA_API_KEY and ALPACA_SECRET_KEY")
        try:
            self.feed = DataFeed(str(feed).lower())
        except ValueError as exc:
            options = [f.value for f in DataFeed]
            raise ProviderError(f"unknown Alpaca feed {feed!r}; use one of {options}") from exc
        try:
            self.adjustment = Adjustment(str(adjustment).lower())
        except ValueError as exc:
            options = [a.value for a in Adjustment]
            raise ProviderError(
                f"unknown Alpaca adjustment {adjustment!r}; use one of {options}"
            ) from exc
        self._api_key = api_key
        self._secret_key = secret_key
        self.universe_path = universe_path
        self.attempts = attempts
        self.base_delay = base_delay
        self.chunk_size = max(int(chunk_size), 1)
        self.url_override = url_override
        self.sleep = sleep
        self._client: Any = None

    def __repr__(self) -> str:  # never show the keys
        return f"AlpacaProvider(feed={self.feed.value!r}, adjustment={self.adjustment.value!r})"

    def universe(self) -> pl.DataFrame:
        return load_universe(self.universe_path, benchmark=self.benchmark_ticker, active_only=True)

    def fetch_bars(self, tickers: Sequence[str], start: date, end: date) -> pl.DataFrame:
        from alpaca.data.enums import Adjustment

        wanted = normalize_tickers(tickers)
        if not wanted or start >= end:
            return pl.DataFrame(schema=BAR_SCHEMA)
        frames = []
        for i in range(0, len(wanted), self.chunk_size):
            chunk = wanted[i : i + self.chunk_size]
            raw = self._bars(chunk, start, end, Adjustment.RAW)
            if self.adjustment == Adjustment.RAW:
                frames.append(raw)
                continue
            adjusted = self._bars(chunk, start, end, self.adjustment).select(
                "ticker",
                "date",
                *(pl.col(c).alias(f"adj_{c}") for c in ("open", "high", "low", "close")),
            )
            joined = raw.join(adjusted, on=["ticker", "date"], how="left").with_columns(
                pl.coalesce(f"adj_{c}", c).alias(f"adj_{c}")
                for c in ("open", "high", "low", "close")
            )
            frames.append(joined)
        return conform_bars(pl.concat(frames, how="diagonal_relaxed"))

    # ------------------------------------------------------------------ internals

    def _client_instance(self) -> Any:
        if self._client is None:
            from alpaca.data.historical.stock import StockHistoricalDataClient

            self._client = StockHistoricalDataClient(
                self._api_key, self._secret_key, raw_data=True, url_override=self.url_override
            )
        return self._client

    def _bars(self, tickers: list[str], start: date, end: date, adjustment: Any) -> pl.DataFrame:
        from alpaca.common.exceptions import APIError
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        request = StockBarsRequest(
            symbol_or_symbols=tickers,
            timeframe=TimeFrame.Day,
            start=datetime.combine(start, dtime(0), tzinfo=NEW_YORK),
            end=datetime.combine(end, dtime(0), tzinfo=NEW_YORK),
            feed=self.feed,
            adjustment=adjustment,
        )
        client = self._client_instance()
        what = (
            f"alpaca bars ({len(tickers)} ticker(s), feed={self.feed.value}, "
            f"adjustment={adjustment.value}) for [{start}, {end})"
        )
        try:
            raw = call_with_retries(
                lambda: client.get_stock_bars(request),
                what=what,
                attempts=self.attempts,
                base_delay=self.base_delay,
                retry_on=(APIError, requests.exceptions.RequestException),
                fatal=self._fatal,
                sleep=self.sleep,
            )
        except ProviderError as exc:
            message = str(exc)
            if self._secret_key in message:
                raise ProviderError(message.replace(self._secret_key, "***")) from None
            raise
        return _to_frame(raw or {}, start, end).filter(pl.col("ticker").is_in(tickers))

    def _fatal(self, exc: BaseException) -> str | None:
        status = getattr(exc, "status_code", None)
        if status is None:
            return None
        detail = _api_message(exc)
        if status in (401, 403):
            return (
                f"Alpaca refused the request (HTTP {status}: {detail}): check "
                f"ALPACA_API_KEY/ALPACA_SECRET_KEY, and that the account's market-data "
                f"subscription covers feed={self.feed.value!r} (free accounts: 'iex')"
            )
        if 400 <= status < 500 and status != 429:
            return f"Alpaca rejected the request (HTTP {status}): {detail}"
        return None


def _api_message(exc: BaseException) -> str:
    text = str(exc)
    try:
        body = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return text[:200]


def _to_frame(raw: dict[str, list[dict[str, Any]]], start: date, end: date) -> pl.DataFrame:
    """alpaca-py's raw ``{symbol: [{"t","o","h","l","c","v","n","vw"}, ...]}`` -> bar rows."""
    frame = pl.DataFrame(
        {"ticker": list(raw.keys()), "bars": list(raw.values())}, schema=_RAW_SCHEMA, strict=False
    )
    return (
        frame.explode("bars")
        .unnest("bars")
        .drop_nulls("t")
        .select(
            "ticker",
            pl.col("t")
            .str.to_datetime(time_zone="UTC")
            .dt.convert_time_zone(NEW_YORK.key)
            .dt.date()
            .alias("date"),
            pl.col("o").alias("open"),
            pl.col("h").alias("high"),
            pl.col("l").alias("low"),
            pl.col("c").alias("close"),
            pl.col("v").alias("volume"),
            pl.col("vw").alias("vwap"),
        )
        # Alpaca's end is inclusive (the bar stamped at the end date's midnight would come back)
        .filter((pl.col("date") >= start) & (pl.col("date") < end))
    )
