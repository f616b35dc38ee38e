"""Macro providers: FRED replayed at fredapi's urllib layer, and the offline generator."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, urlparse

import fredapi.fred
import polars as pl
import pytest

from resources.macro.base import MACRO_SCHEMA, MACRO_SERIES_IDS, MacroProvider
from resources.macro.fred import FredProvider
from resources.macro.offline import OfflineMacroProvider
from resources.market_data.base import ProviderError

FRED_FIXTURES = Path(__file__).parent / "fixtures" / "fred"
API_KEY = "abcdefghijklmnopqrstuvwxyz123456"
WINDOW = (date(2024, 1, 1), date(2024, 1, 17))


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class RecordedFred:
    """Stands in for ``fredapi.fred.urlopen``: serves the recorded XML of
    ``/fred/series/observations`` by series id, or the queued failures first."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.failures: list[Any] = []

    def __call__(self, url: str) -> io.BytesIO:
        self.urls.append(url)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, tuple):  # (HTTP status, recorded XML error body)
                status, name = failure
                body = (FRED_FIXTURES / name).read_bytes()
                raise HTTPError(url, status, "error", {}, io.BytesIO(body))  # type: ignore[arg-type]
            raise failure
        parsed = urlparse(url)
        assert parsed.netloc == "api.stlouisfed.org"
        assert parsed.path == "/fred/series/observations"
        series_id = parse_qs(parsed.query)["series_id"][0]
        return io.BytesIO((FRED_FIXTURES / f"{series_id}.xml").read_bytes())

    def params(self, index: int) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlparse(self.urls[index]).query).items()}


@pytest.fixture
def fred(monkeypatch: pytest.MonkeyPatch) -> RecordedFred:
    recorded = RecordedFred()
    monkeypatch.setattr(fredapi.fred, "urlopen", recorded)
    return recorded


def test_fred_parses_observations_and_drops_missing(fred: RecordedFred) -> None:
    provider = FredProvider(API_KEY, sleep=Sleeps())
    assert isinstance(provider, MacroProvider)
    observations = provider.fetch(list(MACRO_SERIES_IDS), *WINDOW)

    assert observations.schema == MACRO_SCHEMA
    assert [fred.params(i)["series_id"] for i in range(5)] == list(MACRO_SERIES_IDS)
    first = fred.params(0)
    # [start, end) -> FRED's inclusive observation_end is the day before end
    assert (first["observation_start"], first["observation_end"]) == ("2024-01-01", "2024-01-16")
    assert first["api_key"] == API_KEY

    dgs10 = observations.filter(pl.col("series_id") == "DGS10")
    # "." on New Year's Day and Martin Luther King Day are dropped, not NaN
    assert date(2024, 1, 1) not in dgs10["date"] and date(2024, 1, 15) not in dgs10["date"]
    assert dgs10.height == 10
    assert dgs10["value"].is_nan().sum() == 0
    assert dict(dgs10.select("date", "value").rows())[date(2024, 1, 5)] == 4.05
    vix = observations.filter(pl.col("series_id") == "VIXCLS")
    assert vix["value"].to_list()[:2] == [13.20, 14.04]
    assert observations.filter(pl.col("series_id") == "UNRATE").rows() == [
        ("UNRATE", date(2024, 1, 1), 3.7)
    ]


def test_fred_half_open_window_filters_late_rows(fred: RecordedFred) -> None:
    # even if FRED sent more (the recording holds up to Jan 16), [start, end) is enforced
    observations = FredProvider(API_KEY, sleep=Sleeps()).fetch(
        ["DGS2"], date(2024, 1, 3), date(2024, 1, 16)
    )
    assert observations["date"].min() == date(2024, 1, 3)
    assert observations["date"].max() == date(2024, 1, 12)


def test_fred_bad_api_key_fails_at_once(fred: RecordedFred) -> None:
    fred.failures = [(400, "error_bad_api_key.xml")] * 3
    sleeps = Sleeps()
    with pytest.raises(ProviderError) as info:
        FredProvider(API_KEY, sleep=sleeps).fetch(["DGS10"], *WINDOW)
    message = str(info.value)
    assert "check FRED_API_KEY" in message and "not registered" in message
    assert API_KEY not in message
    assert len(fred.urls) == 1 and sleeps == []


def test_fred_unknown_series_fails_at_once(fred: RecordedFred) -> None:
    fred.failures = [(400, "error_bad_series.xml")]
    with pytest.raises(ProviderError, match=r"FRED rejected the request: .*series does not exist"):
        FredProvider(API_KEY, sleep=Sleeps()).fetch(["NOPE"], *WINDOW)
    assert len(fred.urls) == 1


def test_fred_network_errors_are_retried_then_fail(fred: RecordedFred) -> None:
    fred.failures = [URLError("[Errno -3] Temporary failure in name resolution")] * 3
    sleeps = Sleeps()
    with pytest.raises(ProviderError, match=r"DGS10 .* failed after 3 attempts: URLError"):
        FredProvider(API_KEY, sleep=sleeps).fetch(["DGS10"], *WINDOW)
    assert len(fred.urls) == 3 and sleeps == [1.0, 2.0]


def test_fred_rate_limit_and_server_errors_recover(fred: RecordedFred) -> None:
    fred.failures = [(429, "error_429.xml"), (502, "error_429.xml")]
    fred.failures[1] = HTTPError("u", 502, "Bad Gateway", {}, io.BytesIO(b"<html>502</html>"))  # type: ignore[arg-type]
    sleeps = Sleeps()
    observations = FredProvider(API_KEY, sleep=sleeps).fetch(["T10Y2Y"], *WINDOW)
    assert sleeps == [1.0, 2.0]
    assert observations.height == 10
    assert observations["value"].min() == -0.42


def test_fred_empty_window_makes_no_request(fred: RecordedFred) -> None:
    assert FredProvider(API_KEY).fetch(["DGS10"], date(2024, 1, 5), date(2024, 1, 5)).height == 0
    assert fred.urls == []


# --------------------------------------------------------------------------- offline


def test_offline_is_deterministic_regardless_of_window() -> None:
    wide = OfflineMacroProvider(seed=7).fetch(MACRO_SERIES_IDS, date(2000, 1, 1), date(2024, 1, 1))
    narrow = OfflineMacroProvider(seed=7).fetch(
        MACRO_SERIES_IDS, date(2019, 6, 3), date(2019, 7, 1)
    )
    overlap = wide.join(narrow, on=["series_id", "date"], how="inner")
    assert overlap.height == narrow.height > 0
    assert (overlap["value"] == overlap["value_right"]).all()

    # a window past the first simulated horizon extends the paths without changing them
    provider = OfflineMacroProvider(seed=7)
    before = provider.fetch(["DGS10"], date(2020, 1, 1), date(2020, 2, 1))
    provider.fetch(["DGS10"], date(2040, 1, 1), date(2040, 2, 1))
    assert provider.fetch(["DGS10"], date(2020, 1, 1), date(2020, 2, 1)).equals(before)

    other = OfflineMacroProvider(seed=8).fetch(["DGS10"], date(2019, 6, 3), date(2019, 7, 1))
    assert not other.equals(narrow.filter(pl.col("series_id") == "DGS10"))


def test_offline_curve_identity_and_plausible_levels() -> None:
    provider = OfflineMacroProvider()
    assert isinstance(provider, MacroProvider)
    data = provider.fetch(MACRO_SERIES_IDS, date(1990, 1, 1), date(2030, 1, 1))
    assert data.schema == MACRO_SCHEMA
    wide = data.pivot(on="series_id", index="date", values="value")
    daily = wide.drop_nulls(["DGS10", "DGS2", "T10Y2Y"])
    assert daily.height > 10_000
    assert ((daily["T10Y2Y"] - (daily["DGS10"] - daily["DGS2"])).abs() < 1e-9).all()

    def share_within(series: str, low: float, high: float) -> float:
        values = data.filter(pl.col("series_id") == series)["value"]
        return float(values.is_between(low, high).mean())  # type: ignore[arg-type]

    assert share_within("DGS10", 2.0, 5.0) > 0.9
    assert share_within("DGS10", 0.5, 9.0) == 1.0
    assert share_within("DGS2", 0.05, 9.0) == 1.0
    assert share_within("VIXCLS", 12.0, 40.0) > 0.9
    assert share_within("VIXCLS", 9.0, 80.0) == 1.0
    assert share_within("UNRATE", 3.4, 10.0) == 1.0
    # yields move by basis points a day, not percents
    dgs10 = data.filter(pl.col("series_id") == "DGS10")["value"]
    assert dgs10.diff().abs().max() < 0.5  # type: ignore[operator]


def test_offline_calendar_business_days_and_monthly_unrate() -> None:
    start, end = date(2023, 12, 20), date(2024, 3, 5)
    data = OfflineMacroProvider().fetch(MACRO_SERIES_IDS, start, end)
    first, last = data.select(pl.col("date").min().alias("a"), pl.col("date").max().alias("b")).row(
        0
    )
    assert first >= start and last < end
    weekdays = [start + timedelta(days=i) for i in range((end - start).days)]
    weekdays = [d for d in weekdays if d.weekday() < 5]
    for series in ("DGS10", "DGS2", "T10Y2Y", "VIXCLS"):
        assert data.filter(pl.col("series_id") == series)["date"].to_list() == weekdays
    assert data.filter(pl.col("series_id") == "UNRATE")["date"].to_list() == [
        date(2024, 1, 1),
        date(2024, 2, 1),
        date(2024, 3, 1),
    ]


def test_offline_only_requested_series_and_unknown_ones_fail() -> None:
    provider = OfflineMacroProvider()
    data = provider.fetch(["VIXCLS"], date(2024, 1, 1), date(2024, 2, 1))
    assert data["series_id"].unique().to_list() == ["VIXCLS"]
    with pytest.raises(ProviderError, match="no series"):
        provider.fetch(["GDP"], date(2024, 1, 1), date(2024, 2, 1))
