"""Macro series from FRED (St. Louis Fed) through ``fredapi``.

fredapi fetches ``https://api.stlouisfed.org/fred/series/observations`` (XML) with urllib and turns
an HTTP error into ``ValueError(<FRED's message>)``; a non-XML error body (a proxy's HTML 5xx
page) surfaces as an XML ``ParseError``, a network failure as ``URLError``. Mapping:

- bad or missing API key (FRED: "Bad Request.  The value for variable api_key is not
  registered...", "...api_key is not a 32 character alpha-numeric lower-case string") ->
  ``ProviderError`` at once, telling to check ``FRED_API_KEY`` (the key is never shown);
- other 4xx messages (e.g. "The series does not exist.") -> ``ProviderError`` at once;
- rate limiting (429), 5xx, error bodies that are not FRED's (a gateway's page: a ``ParseError``
  or a ``ValueError`` without message), network errors -> retried with bounded backoff, then
  ``ProviderError``.

``observation_end`` is inclusive in FRED, so ``[start, end)`` asks up to ``end - 1 day``.
FRED's missing values (``"."``, which fredapi reads as NaN) are dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any
from urllib.error import URLError
from xml.etree.ElementTree import ParseError

import pandas as pd
import polars as pl

from resources.macro.base import MACRO_SCHEMA, conform_macro, empty_macro
from resources.market_data.base import ProviderError
from resources.retry import call_with_retries

_RETRYABLE_MESSAGES = (
    "too many requests",
    "rate limit",
    "internal server error",
    "service unavailable",
    "bad gateway",
    "gateway timeout",
    "timed out",
)


class FredProvider:
    """``MacroProvider`` over the FRED API (a free key: https://fred.stlouisfed.org/docs/api/)."""

    name = "fred"

    def __init__(
        self,
        api_key: str,
        attempts: int = 3,
        base_delay: float = 1.0,
        *,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not api_key:
            raise ProviderError("FRED provider needs FRED_API_KEY")
        self._api_key = api_key
        self.attempts = attempts
        self.base_delay = base_delay
        self.sleep = sleep
        self._fred: Any = None

    def __repr__(self) -> str:  # never show the key
        return f"FredProvider(attempts={self.attempts})"

    def fetch(self, series_ids: Sequence[str], start: date, end: date) -> pl.DataFrame:
        ids = list(dict.fromkeys(series_ids))
        if not ids or start >= end:
            return empty_macro()
        frames = [self._series(series_id, start, end) for series_id in ids]
        return conform_macro(pl.concat(frames, how="vertical"))

    def _client(self) -> Any:
        if self._fred is None:
            from fredapi import Fred

            self._fred = Fred(api_key=self._api_key)
        return self._fred

    def _series(self, series_id: str, start: date, end: date) -> pl.DataFrame:
        fred = self._client()
        last = end - timedelta(days=1)
        try:
            series = call_with_retries(
                lambda: fred.get_series(
                    series_id, observation_start=start.isoformat(), observation_end=last.isoformat()
                ),
                what=f"FRED series {series_id} for [{start}, {end})",
                attempts=self.attempts,
                base_delay=self.base_delay,
                retry_on=(URLError, OSError, ParseError, ValueError),
                fatal=_fatal,
                sleep=self.sleep,
            )
        except ProviderError as exc:
            message = str(exc)
            if self._api_key in message:
                raise ProviderError(message.replace(self._api_key, "***")) from None
            raise
        return _to_frame(series_id, series, start, end)


def _fatal(exc: BaseException) -> str | None:
    if not isinstance(exc, ValueError):
        return None
    message = " ".join(str(exc).split())
    if message in ("", "None"):
        # an HTTP error whose body was XML but not FRED's <error message=...>: a proxy/gateway
        return None
    lowered = message.lower()
    if "api_key" in lowered or "api key" in lowered:
        return f"FRED rejected the API key ({message}): check FRED_API_KEY"
    if any(fragment in lowered for fragment in _RETRYABLE_MESSAGES):
        return None
    return f"FRED rejected the request: {message}"


def _to_frame(series_id: str, series: pd.Series, start: date, end: date) -> pl.DataFrame:
    if series is None or len(series) == 0:
        return pl.DataFrame(schema=MACRO_SCHEMA)
    values = pd.DataFrame(
        {"date": pd.to_datetime(series.index), "value": pd.to_numeric(series.to_numpy())}
    )
    return (
        pl.from_pandas(values)
        .select(
            pl.lit(series_id).alias("series_id"),
            pl.col("date").cast(pl.Date),
            pl.col("value").cast(pl.Float64),
        )
        .filter((pl.col("date") >= start) & (pl.col("date") < end))
    )
