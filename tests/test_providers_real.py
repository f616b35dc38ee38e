"""Real market-data providers, replayed offline at the HTTP layer so the real client code runs.

- yfinance: a plain ``requests.Session`` is passed to ``yf.download`` (yfinance 1.x supports
  ``requests`` sessions besides its default curl_cffi one) and ``responses`` serves recorded
  Yahoo responses: the cookie (fc.yahoo.com) and crumb (v1/test/getcrumb) handshake and the
  v8/finance/chart API (the ``range=1d`` timezone probe and the ``period1/period2`` history).
- Alpaca: ``responses`` serves recorded ``GET data.alpaca.markets/v2/stocks/bars`` pages.
- files / universe / retry: small fixtures under tests/fixtures.

No test sleeps: providers get a recording ``sleep``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pandas as pd
import polars as pl
import pytest
import requests
import responses

from quant_core.sectors import UNCLASSIFIED
from resources.market_data.alpaca_provider import AlpacaProvider
from resources.market_data.base import (
    BAR_SCHEMA,
    GICS_SECTORS,
    UNIVERSE_SCHEMA,
    MarketDataProvider,
    ProviderError,
)
from resources.market_data.files_provider import FilesProvider
from resources.market_data.sectors import classify, sector_from_labels
from resources.market_data.universe_list import COMMITTED_UNIVERSE, load_universe, stock_universe
from resources.market_data.yfinance_provider import YFinanceProvider, _to_long
from resources.retry import call_with_retries

FIXTURES = Path(__file__).parent / "fixtures"
NY = ZoneInfo("America/New_York")
WINDOW = (date(2024, 2, 5), date(2024, 2, 17))
TRADING_DAYS = [date(2024, 2, d) for d in (5, 6, 7, 8, 9, 12, 13, 14, 15, 16)]
SECTOR_ETFS = ("XLC", "XLY", "XLP", "XLE", "XLF", "XLV", "XLI", "XLK", "XLB", "XLRE", "XLU")


class Sleeps(list):
    """A ``sleep`` that records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def ny_midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=NY).timestamp())


def row(frame: pl.DataFrame, ticker: str, day: date) -> dict[str, Any]:
    rows = frame.filter((pl.col("ticker") == ticker) & (pl.col("date") == day)).to_dicts()
    assert len(rows) == 1, (ticker, day, rows)
    return rows[0]


# --------------------------------------------------------------------------- retry


def test_retry_backs_off_exponentially_then_succeeds() -> None:
    sleeps = Sleeps()
    outcomes: list[Any] = [ConnectionError("reset"), ConnectionError("reset"), "ok"]

    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = call_with_retries(
        flaky, what="x", attempts=3, base_delay=0.5, retry_on=(ConnectionError,), sleep=sleeps
    )
    assert result == "ok"
    assert sleeps == [0.5, 1.0]


def test_retry_gives_up_with_provider_error_naming_the_cause() -> None:
    sleeps = Sleeps()
    calls = []

    def down() -> None:
        calls.append(1)
        raise TimeoutError("read timed out")

    with pytest.raises(ProviderError) as info:
        call_with_retries(
            down, what="demo fetch", attempts=4, retry_on=(TimeoutError,), sleep=sleeps
        )
    assert str(info.value) == "demo fetch failed after 4 attempts: TimeoutError: read timed out"
    assert isinstance(info.value.__cause__, TimeoutError)
    assert len(calls) == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_retry_fatal_errors_fail_at_once_and_others_propagate() -> None:
    sleeps = Sleeps()
    calls = []

    def unauthorized() -> None:
        calls.append(1)
        raise PermissionError("401")

    with pytest.raises(ProviderError, match="demo failed: bad credentials"):
        call_with_retries(
            unauthorized,
            what="demo",
            retry_on=(PermissionError,),
            fatal=lambda exc: "bad credentials",
            sleep=sleeps,
        )
    assert len(calls) == 1 and sleeps == []

    with pytest.raises(KeyError):  # not a provider failure: a bug surfaces as itself
        empty: dict[str, int] = {}
        call_with_retries(
            lambda: empty["x"], what="demo", retry_on=(ConnectionError,), sleep=sleeps
        )
    assert sleeps == []


# --------------------------------------------------------------------------- universe list


def test_the_committed_list_types_no_sector_and_takes_each_from_the_package() -> None:
    committed = pl.read_csv(COMMITTED_UNIVERSE, infer_schema=False)
    assert "sector" not in committed.columns  # never a table typed from memory
    universe = load_universe()
    assert universe.schema == UNIVERSE_SCHEMA
    assert universe["ticker"].n_unique() == universe.height >= 100
    assert set(universe["sector"].unique()) <= set(GICS_SECTORS) | {"Index", UNCLASSIFIED}
    assert universe.filter(pl.col("is_benchmark"))["ticker"].to_list() == ["SPY"]
    spy = universe.filter(pl.col("ticker") == "SPY").row(0, named=True)
    assert (spy["sector"], spy["asset_type"]) == ("Index", "etf")
    sectors = dict(universe.select("ticker", "sector").rows())
    assert sectors["AAPL"] == "Information Technology" and sectors["XOM"] == "Energy"
    stocks = universe.filter(pl.col("asset_type") == "stock")
    classified = stocks.filter(pl.col("sector") != UNCLASSIFIED).height
    assert classified >= 0.75 * stocks.height
    # every GICS sector has a handful of stocks
    per_sector = stocks.filter(pl.col("sector") != UNCLASSIFIED).group_by("sector").len()
    assert per_sector.height == len(GICS_SECTORS)
    assert per_sector.select(pl.col("len").min()).item() >= 5


def test_the_sector_spdrs_and_other_funds_of_the_list_are_not_stocks() -> None:
    universe = load_universe()
    kinds = dict(universe.select("ticker", "asset_type").rows())
    assert {kinds[t] for t in (*SECTOR_ETFS, "TLT", "GLD", "SPY")} == {"etf"}
    kept = stock_universe(universe)
    assert not set(kept.members["ticker"]) & {*SECTOR_ETFS, "TLT", "GLD"}
    assert set(kept.non_stocks_left_out) >= {*SECTOR_ETFS, "TLT", "GLD"}
    assert "SPY" in kept.members["ticker"]  # the benchmark stays, as data
    assert kept.members.columns == ["ticker", "name", "sector", "is_benchmark"]
    everything = stock_universe(universe, include_etfs=True)
    assert everything.members.height == universe.height and everything.non_stocks_left_out == []


def test_a_ticker_the_package_knows_gets_its_gics_sector() -> None:
    found = classify(["JNJ", "brk-b", "BRK.B", "ZZQA"]).rows()
    assert found == [
        ("JNJ", True, "Health Care"),
        ("brk-b", True, "Financials"),  # share-class separators compare alike
        ("BRK.B", True, "Financials"),
        ("ZZQA", False, None),
    ]


def test_labels_decide_a_sector_by_category_name_and_a_tie_decides_nothing() -> None:
    # GICS industry names and TRBC sector names map to their GICS sector
    assert sector_from_labels(["Semiconductors"]) == "Information Technology"
    assert sector_from_labels(["Healthcare", "Biotechnology"]) == "Health Care"
    # REITs are Real Estate since GICS 2016, though older definitions filed them in Financials
    assert sector_from_labels(["Residential REITs"]) == "Real Estate"
    # two sector names: the one most labels point to, and a tie is no answer
    assert sector_from_labels(["Industrials", "Information Technology", "Semiconductors"]) == (
        "Information Technology"
    )
    assert sector_from_labels(["Energy", "Utilities"]) is None
    assert sector_from_labels(["Conglomerate"]) is None


def test_the_classification_loads_with_the_network_unreachable() -> None:
    script = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('network is off in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "socket.create_connection = refuse\n"
        "from resources.market_data.sectors import classify, package_classification\n"
        "assert package_classification().height > 1000\n"
        "print(classify(['JNJ']).row(0)[2])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[1],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Health Care"


def test_active_only_drops_delisted_tickers() -> None:
    everything = load_universe()
    active = load_universe(active_only=True)
    assert {"AGN", "XL", "CREE"} <= set(everything["ticker"])
    assert not {"AGN", "XL", "CREE"} & set(active["ticker"])
    assert {"AAPL", "SPY", "XLK"} <= set(active["ticker"])


def test_user_universe_file_overrides_the_list(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        "Ticker,Name,SECTOR\nabc,Abc Corp,Energy\nXYZ,,Utilities\nJNJ,J&J,\nAAPL,Apple,Energy\n"
    )
    universe = load_universe(str(path))
    assert universe.schema == UNIVERSE_SCHEMA
    assert universe.rows() == [
        ("AAPL", "Apple", "Energy", False, "stock"),  # the user's sector wins
        ("ABC", "Abc Corp", "Energy", False, "stock"),
        ("JNJ", "J&J", "Health Care", False, "stock"),  # none given: the package's
        ("SPY", "SPDR S&P 500 ETF Trust", "Index", True, "etf"),  # always there
        ("XYZ", None, "Utilities", False, "stock"),
    ]

    parquet = tmp_path / "mine.parquet"
    pl.DataFrame({"ticker": ["QQQ", "AAA"], "sector": ["Index", "Materials"]}).write_parquet(
        parquet
    )
    assert load_universe(parquet, benchmark="QQQ").filter(pl.col("is_benchmark"))[
        "ticker"
    ].to_list() == ["QQQ"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("symbol,name\nAAA,Aaa\n", r"lacks column\(s\) \['ticker'\]"),
        ("ticker,name,sector\nAAA,Aaa,Energy\naaa,Again,Energy\n", r"duplicate tickers: \['AAA'\]"),
        ("ticker,name,sector\n", "no rows"),
        ("", "empty"),
        ("ticker,name,sector\n,Aaa,Energy\n", "1 row\\(s\\) with no ticker"),
        ("ticker,asset_type\nAAA,bond\n", r"unknown asset_type \['bond'\]"),
    ],
)
def test_bad_universe_files_fail_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "u.csv"
    path.write_text(content)
    with pytest.raises(ProviderError, match=message):
        load_universe(path)


def test_missing_universe_file_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="does not exist"):
        load_universe(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- yfinance


class RecordedYahoo:
    """Serves recorded Yahoo responses through ``responses`` and counts chart requests.

    ``rate_limited``: symbol -> how many chart requests get HTTP 429 (None: all of them).
    ``server_errors``: symbol -> how many history (period1/period2) requests get HTTP 500.
    Symbols without a recording get Yahoo's 404 "No data found, symbol may be delisted"."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.rate_limited: dict[str, int | None] = {}
        self.server_errors: dict[str, int] = {}
        self.chart_requests: list[tuple[str, dict[str, str]]] = []
        yahoo = FIXTURES / "yahoo"
        mock.add(
            responses.GET,
            "https://fc.yahoo.com/",
            status=404,
            body="<html><body>404 Not Found</body></html>",
            headers={
                "Set-Cookie": "A3=d=AQABBKtest&S=AQAAAtest; Expires=Sat, 15 Feb 2025 20:00:00 GMT;"
                " Max-Age=31557600; Domain=.yahoo.com; Path=/; SameSite=None; Secure; HttpOnly"
            },
        )
        mock.add(
            responses.GET,
            re.compile(r"https://query[12]\.finance\.yahoo\.com/v1/test/getcrumb"),
            body="Xq3bH8sN.Jw",
            content_type="text/plain",
        )
        mock.add(  # csrf cookie strategy (used after an HTTP error): US visitors get no form
            responses.GET,
            re.compile(r"https://guce\.yahoo\.com/consent.*"),
            body="<html><head><title>Yahoo</title></head><body></body></html>",
            content_type="text/html",
        )
        mock.add(
            responses.GET,
            re.compile(r"https://query[12]\.finance\.yahoo\.com/v10/finance/quoteSummary/.*"),
            status=404,
            json={
                "quoteSummary": {
                    "result": None,
                    "error": {"code": "Not Found", "description": "Quote not found for symbol"},
                }
            },
        )
        mock.add_callback(
            responses.GET,
            re.compile(r"https://query[12]\.finance\.yahoo\.com/v8/finance/chart/.*"),
            callback=self._chart,
        )
        self._dir = yahoo

    def _chart(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        url = urlparse(request.url or "")
        symbol = url.path.rsplit("/", 1)[1]
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.chart_requests.append((symbol, params))
        if symbol in self.rate_limited:
            left = self.rate_limited[symbol]
            if left is None or left > 0:
                if left is not None:
                    self.rate_limited[symbol] = left - 1
                return 429, {"Content-Type": "text/plain"}, "Too Many Requests\r\n"
        if "period1" in params and self.server_errors.get(symbol, 0) > 0:
            self.server_errors[symbol] -= 1
            return (
                500,
                {"Content-Type": "text/html"},
                "<html><body>Internal Server Error</body></html>",
            )
        if params.get("range") == "1d":
            path = self._dir / f"chart_{symbol}_range_1d.json"
        else:
            path = self._dir / f"chart_{symbol}_2024-02-05_2024-02-17.json"
        if not path.exists():
            path, status = self._dir / "chart_not_found.json", 404
        else:
            status = 200
        return status, {"Content-Type": "application/json;charset=utf-8"}, path.read_text()

    def history_requests(self, symbol: str) -> list[dict[str, str]]:
        return [p for s, p in self.chart_requests if s == symbol and "period1" in p]

    def requests_for(self, symbol: str) -> int:
        return sum(1 for s, _ in self.chart_requests if s == symbol)


@pytest.fixture
def yahoo(monkeypatch: pytest.MonkeyPatch):
    from yfinance import cache
    from yfinance.data import SingletonMeta, YfData

    # no persistent tz/cookie caches on disk, a fresh YfData (cookie, crumb) per test
    monkeypatch.setattr(cache._TzCacheManager, "_tz_cache", cache._TzCacheDummy())
    monkeypatch.setattr(cache._CookieCacheManager, "_Cookie_cache", cache._CookieCacheDummy())
    monkeypatch.setattr(SingletonMeta, "_instances", {})
    YfData.cache_get.cache_clear()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield RecordedYahoo(mock)
    YfData.cache_get.cache_clear()


def yf_provider(sleeps: Sleeps, **kwargs: Any) -> YFinanceProvider:
    return YFinanceProvider(session=requests.Session(), sleep=sleeps, **kwargs)


def test_yfinance_parses_recorded_chart_api(yahoo: RecordedYahoo) -> None:
    sleeps = Sleeps()
    provider = yf_provider(sleeps)
    assert isinstance(provider, MarketDataProvider)
    bars = provider.fetch_bars(["AAPL", "msft", "SPY"], *WINDOW)

    assert bars.schema == BAR_SCHEMA
    assert bars.height == 30 and sleeps == []
    for ticker in ("AAPL", "MSFT", "SPY"):
        assert bars.filter(pl.col("ticker") == ticker)["date"].to_list() == TRADING_DAYS
    # the request window is New York midnights of [start, end)
    history = yahoo.history_requests("AAPL")
    assert history[0]["period1"] == str(ny_midnight(WINDOW[0]))
    assert history[0]["period2"] == str(ny_midnight(WINDOW[1]))
    assert history[0]["interval"] == "1d"

    first = row(bars, "AAPL", date(2024, 2, 5))
    assert first["close"] == pytest.approx(187.68, abs=1e-4)
    assert first["volume"] == 69668800.0
    assert first["vwap"] is None
    # AAPL went ex-dividend (0.24) on 2024-02-09: earlier closes are adjusted down
    factor = 1 - 0.24 / 188.32
    assert first["adj_close"] == pytest.approx(187.68 * factor, rel=1e-6)
    ratio = first["adj_close"] / first["close"]
    for price in ("open", "high", "low"):
        assert first[f"adj_{price}"] == pytest.approx(first[price] * ratio, rel=1e-12)
    on_ex_date = row(bars, "AAPL", date(2024, 2, 9))
    assert on_ex_date["adj_close"] == pytest.approx(on_ex_date["close"], rel=1e-9)
    spy = bars.filter(pl.col("ticker") == "SPY")
    assert spy.select((pl.col("adj_close") - pl.col("close")).abs().max()).item() < 1e-9


def test_yfinance_window_is_half_open(yahoo: RecordedYahoo) -> None:
    bars = yf_provider(Sleeps()).fetch_bars(["SPY"], date(2024, 2, 6), date(2024, 2, 16))
    assert bars["date"].min() == date(2024, 2, 6)
    assert bars["date"].max() == date(2024, 2, 15)
    assert yahoo.history_requests("SPY")[0]["period2"] == str(ny_midnight(date(2024, 2, 16)))


def test_yfinance_rate_limited_ticker_fails_after_bounded_retries(yahoo: RecordedYahoo) -> None:
    yahoo.rate_limited["MSFT"] = None  # every MSFT request: HTTP 429 Too Many Requests
    sleeps = Sleeps()
    with pytest.raises(ProviderError) as info:
        yf_provider(sleeps, attempts=3, base_delay=2.0).fetch_bars(["AAPL", "MSFT"], *WINDOW)
    message = str(info.value)
    assert "after 3 attempts" in message and "MSFT" in message and "AAPL" not in message
    assert sleeps == [2.0, 4.0]
    # yfinance tries each call twice (second cookie strategy) before YFRateLimitError
    assert yahoo.requests_for("MSFT") == 2 * 3
    # the ticker that worked is not fetched again on the retries
    assert len(yahoo.history_requests("AAPL")) == 1


def test_yfinance_transient_rate_limit_recovers_on_retry(yahoo: RecordedYahoo) -> None:
    yahoo.rate_limited["MSFT"] = 2  # the first attempt is rate limited, the second succeeds
    sleeps = Sleeps()
    bars = yf_provider(sleeps).fetch_bars(["AAPL", "MSFT"], *WINDOW)
    assert sleeps == [1.0]
    assert bars.group_by("ticker").len().sort("ticker").rows() == [("AAPL", 10), ("MSFT", 10)]
    assert len(yahoo.history_requests("MSFT")) == 1


def test_yfinance_server_error_is_not_replayed_from_yfinance_cache(yahoo: RecordedYahoo) -> None:
    # yfinance memoises past-window GETs in memory: the retry must reach the server again
    yahoo.server_errors["SPY"] = 2  # the first attempt's request and yfinance's own re-request
    sleeps = Sleeps()
    bars = yf_provider(sleeps).fetch_bars(["SPY"], *WINDOW)
    assert sleeps == [1.0]
    assert bars.height == 10
    assert len(yahoo.history_requests("SPY")) == 3


def test_yfinance_unknown_ticker_is_a_failure_not_nan_data(yahoo: RecordedYahoo) -> None:
    sleeps = Sleeps()
    with pytest.raises(ProviderError, match=r"no data for 1 ticker\(s\) \['ZZZZ'\]"):
        yf_provider(sleeps, attempts=2).fetch_bars(["SPY", "ZZZZ"], *WINDOW)
    assert sleeps == [1.0]


def test_yfinance_rate_limit_exception_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    from yfinance.exceptions import YFRateLimitError

    calls = []

    def rate_limited(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        raise YFRateLimitError()

    sleeps = Sleeps()
    provider = YFinanceProvider(attempts=3, sleep=sleeps)
    monkeypatch.setattr(provider, "_download", rate_limited)
    with pytest.raises(ProviderError, match="after 3 attempts: YFRateLimitError"):
        provider.fetch_bars(["AAPL"], *WINDOW)
    assert len(calls) == 3 and sleeps == [1.0, 2.0]


def test_all_nan_columns_are_dropped_not_kept_as_rows() -> None:
    index = pd.DatetimeIndex(["2024-02-05", "2024-02-06"], name="Date")
    columns = pd.MultiIndex.from_product(
        [["Adj Close", "Close", "High", "Low", "Open", "Volume"], ["AAA", "BAD"]],
        names=["Price", "Ticker"],
    )
    values = [[1.0, float("nan")] * 6, [2.0, float("nan")] * 6]
    wide = pd.DataFrame(values, index=index, columns=columns)
    long = _to_long(wide, date(2024, 2, 5), date(2024, 2, 7))
    assert long["ticker"].unique().to_list() == ["AAA"]
    assert long["date"].to_list() == [date(2024, 2, 5), date(2024, 2, 6)]


def test_yfinance_universe_is_the_active_list() -> None:
    universe = YFinanceProvider().universe()
    assert "SPY" in universe["ticker"] and "AGN" not in universe["ticker"]


# --------------------------------------------------------------------------- alpaca

ALPACA_BARS = "https://data.alpaca.markets/v2/stocks/bars"
SECRET = "s3cr3t-never-printed"


class RecordedAlpaca:
    """Serves recorded /v2/stocks/bars pages: ``adjustment=raw`` in two pages (the second
    asked for with the first's ``next_page_token``), ``adjustment=all`` in one."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.calls: list[tuple[dict[str, str], dict[str, str]]] = []
        self.failures: list[Any] = []  # served before the recordings, one per request
        self.token = json.loads((FIXTURES / "alpaca" / "bars_raw_page1.json").read_text())[
            "next_page_token"
        ]
        mock.add_callback(responses.GET, ALPACA_BARS, callback=self._bars)

    def _bars(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        params = {k: v[0] for k, v in parse_qs(urlparse(request.url or "").query).items()}
        self.calls.append((params, dict(request.headers)))
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            status, name = failure
            return status, {"Content-Type": "application/json"}, _alpaca_file(name)
        if params.get("adjustment") == "raw":
            name = (
                "bars_raw_page2.json"
                if params.get("page_token") == self.token
                else ("bars_raw_page1.json")
            )
        else:
            name = "bars_all.json"
        return 200, {"Content-Type": "application/json; charset=UTF-8"}, _alpaca_file(name)


def _alpaca_file(name: str) -> str:
    return (FIXTURES / "alpaca" / name).read_text()


@pytest.fixture
def alpaca():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield RecordedAlpaca(mock)


def test_alpaca_pages_raw_and_adjusted_bars(alpaca: RecordedAlpaca) -> None:
    sleeps = Sleeps()
    provider = AlpacaProvider("key-id", SECRET, sleep=sleeps)
    assert isinstance(provider, MarketDataProvider)
    bars = provider.fetch_bars(["AAPL", "MSFT", "SPY"], *WINDOW)

    assert bars.schema == BAR_SCHEMA and sleeps == []
    assert bars.group_by("ticker").len().sort("ticker").rows() == [
        ("AAPL", 10),
        ("MSFT", 10),  # split across the two raw pages
        ("SPY", 10),
    ]
    for ticker in ("AAPL", "MSFT", "SPY"):
        assert bars.filter(pl.col("ticker") == ticker)["date"].to_list() == TRADING_DAYS

    params = [p for p, _ in alpaca.calls]
    assert [(p["adjustment"], p.get("page_token")) for p in params] == [
        ("raw", None),
        ("raw", alpaca.token),
        ("all", None),
    ]
    first = params[0]
    assert first["symbols"] == "AAPL,MSFT,SPY"
    assert first["timeframe"] == "1Day"
    assert first["feed"] == "iex"
    assert first["limit"] == "10000"
    # [start, end) in New York time, sent as UTC
    assert first["start"] == "2024-02-05T05:00:00+00:00"
    assert first["end"] == "2024-02-17T05:00:00+00:00"
    headers = alpaca.calls[0][1]
    assert headers["APCA-API-KEY-ID"] == "key-id"

    aapl = row(bars, "AAPL", date(2024, 2, 5))
    assert (aapl["open"], aapl["close"], aapl["volume"]) == (188.15, 187.68, 1609349.0)
    assert aapl["vwap"] == pytest.approx(187.6125)
    assert aapl["adj_close"] == pytest.approx(187.4408)  # adjustment=all, before the ex-date
    assert aapl["adj_open"] == pytest.approx(187.9102)
    after = row(bars, "AAPL", date(2024, 2, 12))
    assert after["adj_close"] == after["close"]


def test_alpaca_raw_adjustment_makes_one_request_series(alpaca: RecordedAlpaca) -> None:
    provider = AlpacaProvider("key-id", SECRET, adjustment="raw", sleep=Sleeps())
    bars = provider.fetch_bars(["AAPL", "MSFT", "SPY"], date(2024, 2, 5), date(2024, 2, 16))
    assert [p["adjustment"] for p, _ in alpaca.calls] == ["raw", "raw"]
    assert bars["date"].max() == date(2024, 2, 15)  # Alpaca's end is inclusive; ours is not
    assert (bars["adj_close"] == bars["close"]).all()


def test_alpaca_bad_credentials_fail_at_once_without_the_secret(alpaca: RecordedAlpaca) -> None:
    alpaca.failures = [(401, "error_401.json")] * 5
    sleeps = Sleeps()
    with pytest.raises(ProviderError) as info:
        AlpacaProvider("key-id", SECRET, sleep=sleeps).fetch_bars(["AAPL"], *WINDOW)
    message = str(info.value)
    assert "ALPACA_API_KEY/ALPACA_SECRET_KEY" in message and "401" in message
    assert SECRET not in message and SECRET not in repr(info.value.__cause__)
    assert len(alpaca.calls) == 1 and sleeps == []


def test_alpaca_server_errors_are_retried_then_fail(alpaca: RecordedAlpaca) -> None:
    alpaca.failures = [(500, "error_500.json")] * 3
    sleeps = Sleeps()
    with pytest.raises(ProviderError, match=r"after 3 attempts.*internal server error"):
        AlpacaProvider("key-id", SECRET, sleep=sleeps).fetch_bars(["AAPL"], *WINDOW)
    assert len(alpaca.calls) == 3 and sleeps == [1.0, 2.0]


def test_alpaca_connection_errors_are_retried(alpaca: RecordedAlpaca) -> None:
    alpaca.failures = [requests.ConnectionError("connection reset by peer")]
    sleeps = Sleeps()
    bars = AlpacaProvider("key-id", SECRET, sleep=sleeps).fetch_bars(["AAPL", "MSFT"], *WINDOW)
    assert sleeps == [1.0]
    # the recording holds SPY too: only the requested tickers are kept
    assert bars["ticker"].unique().sort().to_list() == ["AAPL", "MSFT"]


def test_alpaca_rejects_unknown_feed() -> None:
    with pytest.raises(ProviderError, match="unknown Alpaca feed 'nasdaq'"):
        AlpacaProvider("key-id", SECRET, feed="nasdaq")


# --------------------------------------------------------------------------- files


def test_files_csv_case_insensitive_columns_and_half_open_window() -> None:
    provider = FilesProvider(FIXTURES / "files" / "bars_mixed_case.csv")
    assert isinstance(provider, MarketDataProvider)
    bars = provider.fetch_bars(["AAPL", "msft"], date(2024, 1, 3), date(2024, 1, 5))
    assert bars.schema == BAR_SCHEMA
    assert bars.select("ticker", "date").rows() == [
        ("AAPL", date(2024, 1, 3)),
        ("AAPL", date(2024, 1, 4)),
        ("MSFT", date(2024, 1, 3)),
        ("MSFT", date(2024, 1, 4)),
    ]
    aapl = row(bars, "AAPL", date(2024, 1, 3))
    assert aapl["adj_close"] == 183.55 and aapl["volume"] == 58414500.0
    assert aapl["adj_open"] == pytest.approx(184.22 * 183.55 / 184.25)
    assert aapl["vwap"] is None
    assert provider.fetch_bars(["AAPL"], date(2024, 1, 9), date(2024, 2, 1)).height == 0


def test_files_directory_of_csv_and_parquet() -> None:
    provider = FilesProvider(FIXTURES / "files" / "dir")
    bars = provider.fetch_bars(["SPY", "ZZZT"], date(2024, 1, 1), date(2024, 1, 9))
    spy = bars.filter(pl.col("ticker") == "SPY")
    # CSV (string dates) + Parquet (UTC datetimes at New York midnight) in one series
    assert spy["date"].to_list() == [date(2024, 1, d) for d in (2, 3, 4, 5, 8)]
    assert spy["vwap"].is_null().to_list() == [True, True, True, False, False]
    assert (spy["adj_close"] == spy["close"]).all()  # no adjusted close in the files
    assert row(bars, "ZZZT", date(2024, 1, 4))["vwap"] == 10.02

    universe = provider.universe()
    assert universe.schema == UNIVERSE_SCHEMA
    assert universe.rows() == [
        ("SPY", "SPDR S&P 500 ETF Trust", "Index", True, "etf"),
        ("ZZZT", None, UNCLASSIFIED, False, "stock"),  # in the files, known to no source
    ]


def test_files_single_parquet_with_symbol_and_date_columns(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    pl.DataFrame(
        {
            "symbol": ["AAPL", "AAPL", "XOM"],
            "DATE": [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 2)],
            "open": [1.0, 2.0, 3.0],
            "high": [1.5, 2.5, 3.5],
            "low": [0.5, 1.5, 2.5],
            "close": [1.2, 2.2, 3.2],
            "volume": [10, 20, 30],
            "adj_close": [0.6, 1.1, 3.2],
            "extra": ["x", "y", "z"],
        }
    ).write_parquet(path)
    provider = FilesProvider(str(path))
    bars = provider.fetch_bars(["AAPL"], date(2024, 1, 1), date(2024, 1, 3))
    assert bars.rows(named=True)[0] | {"vwap": None} == {
        "ticker": "AAPL",
        "date": date(2024, 1, 2),
        "open": 1.0,
        "high": 1.5,
        "low": 0.5,
        "close": 1.2,
        "volume": 10.0,
        "adj_open": pytest.approx(0.5),
        "adj_high": pytest.approx(0.75),
        "adj_low": pytest.approx(0.25),
        "adj_close": 0.6,
        "vwap": None,
    }
    universe = provider.universe()
    assert universe.filter(pl.col("ticker") == "XOM")["sector"].item() == "Energy"
    assert "SPY" not in universe["ticker"]  # restricted to the tickers in the files


def test_files_missing_required_column_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("ticker,date,open,high,low,close\nAAA,2024-01-02,1,1,1,1\n")
    with pytest.raises(ProviderError, match=r"lacks required column\(s\) \['volume'\]"):
        FilesProvider(path).fetch_bars(["AAA"], date(2024, 1, 1), date(2024, 2, 1))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "ticker,date,open,high,low,close,volume\nAAA,2024-01-02,1,1,1,1,5\n"
            "aaa,2024-01-02,1,1,1,1,5\n",
            r"repeat a \(ticker, date\)",
        ),
        ("ticker,date,open,high,low,close,volume\nAAA,02/01/2024,1,1,1,1,5\n", "cannot read"),
    ],
)
def test_files_bad_rows_fail_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(content)
    with pytest.raises(ProviderError, match=message):
        FilesProvider(path).fetch_bars(["AAA"], date(2024, 1, 1), date(2024, 2, 1))


def test_files_bad_paths_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="does not exist"):
        FilesProvider(tmp_path / "missing")
    with pytest.raises(ProviderError, match=r"no \*\.csv or \*\.parquet files"):
        FilesProvider(tmp_path)


# --------------------------------------------------------------------------- sectors of a real panel

UNIVERSE_FIXTURES = FIXTURES / "universe"


def test_a_files_panel_keeps_its_stocks_and_adrs_and_leaves_its_funds_out() -> None:
    listed = FilesProvider(UNIVERSE_FIXTURES / "panel.csv").universe()
    rows = {r["ticker"]: (r["sector"], r["asset_type"]) for r in listed.iter_rows(named=True)}
    assert rows == {
        "JNJ": ("Health Care", "stock"),
        "BP": ("Energy", "stock"),  # ADRs are stocks, with their home index's sector
        "ASML": ("Information Technology", "stock"),
        "TLT": (UNCLASSIFIED, "etf"),
        "GLD": (UNCLASSIFIED, "etf"),
        "XLU": (UNCLASSIFIED, "etf"),  # a sector SPDR is a fund, not a utility
        "SPY": ("Index", "etf"),
        "ZZQA": (UNCLASSIFIED, "stock"),
        "ZZQB": (UNCLASSIFIED, "stock"),
    }
    kept = stock_universe(listed)
    assert sorted(kept.members["ticker"]) == ["ASML", "BP", "JNJ", "SPY", "ZZQA", "ZZQB"]
    assert kept.non_stocks_left_out == ["GLD", "TLT", "XLU"]
    assert kept.unclassified == ["ZZQA", "ZZQB"]
    included = stock_universe(listed, include_etfs=True)
    assert set(included.members["ticker"]) == set(rows) and included.non_stocks_left_out == []
    assert included.unclassified == ["GLD", "TLT", "XLU", "ZZQA", "ZZQB"]


def test_the_users_file_wins_and_a_fund_is_known_by_its_name() -> None:
    provider = FilesProvider(
        UNIVERSE_FIXTURES / "panel.csv",
        universe_path=str(UNIVERSE_FIXTURES / "user_universe.csv"),
    )
    rows = {
        r["ticker"]: (r["sector"], r["asset_type"])
        for r in provider.universe().iter_rows(named=True)
    }
    assert rows["JNJ"] == ("Consumer Staples", "stock")  # the file's sector, not the package's
    assert rows["ZZQA"] == (UNCLASSIFIED, "stock")
    assert rows["ZZQB"] == (UNCLASSIFIED, "fund")  # "Income Fund" in its name
    # the file does not name TLT: without the committed list, nothing says it is a fund
    assert rows["TLT"] == (UNCLASSIFIED, "stock")
    assert rows["BP"] == ("Energy", "stock")
    kept = stock_universe(provider.universe())
    assert kept.non_stocks_left_out == ["ZZQB"]
