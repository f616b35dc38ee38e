"""SyntheticMarket: measured stylized facts, the planted signal, determinism, faults, ranges."""

from __future__ import annotations

from datetime import date

import exchange_calendars as xcals
import numpy as np
import polars as pl
import pytest

from quant_assets.ingest.validation import validate_bars
from resources.market_data import synthetic
from resources.market_data.base import BAR_SCHEMA, UNIVERSE_SCHEMA, MarketDataProvider
from resources.market_data.synthetic import SECTORS, SyntheticMarket, planted_signal

FIRST, END = date(2015, 1, 1), date(2018, 1, 1)  # ~755 sessions of the default 100 tickers
INDEX = SyntheticMarket.benchmark_ticker


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket()


@pytest.fixture(scope="module")
def bars(market: SyntheticMarket) -> pl.DataFrame:
    return market.fetch_bars(market.universe()["ticker"].to_list(), FIRST, END)


@pytest.fixture(scope="module")
def returns(bars: pl.DataFrame) -> np.ndarray:
    """Daily log close-to-close returns of the members, (sessions, tickers)."""
    wide = (
        bars.filter(pl.col("ticker") != INDEX)
        .pivot(on="ticker", index="date", values="close")
        .sort("date")
        .drop("date")
        .to_numpy()
    )
    return np.diff(np.log(wide), axis=0)


def _kurtosis(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0)
    return (centred**4).mean(axis=0) / (centred**2).mean(axis=0) ** 2


def test_implements_the_provider_protocol(market):
    assert isinstance(market, MarketDataProvider)
    assert market.name == "synthetic"
    assert market.benchmark_ticker == "SYNIDX"


def test_universe_has_every_ticker_in_a_sector_and_the_index(market):
    members = market.universe()
    assert members.schema == UNIVERSE_SCHEMA
    assert members["ticker"].n_unique() == members.height == 101
    stocks = members.filter(~pl.col("is_benchmark"))
    assert stocks["sector"].null_count() == 0
    assert set(stocks["sector"]) <= set(SECTORS)
    assert stocks["sector"].n_unique() == len(SECTORS)
    assert set(stocks["asset_type"]) == {"stock"}
    index = members.filter(pl.col("is_benchmark"))
    assert index.rows() == [(INDEX, index["name"][0], "Index", True, "index")]


def test_universe_scales_to_thousands_of_tickers():
    market = SyntheticMarket(n_tickers=2500)
    members = market.universe()
    assert members.height == 2501
    assert members["ticker"].n_unique() == 2501
    stocks = members.filter(~pl.col("is_benchmark"))["ticker"].to_list()
    bars = market.fetch_bars([*stocks, INDEX], date(2000, 1, 3), date(2000, 2, 1))
    assert bars["ticker"].n_unique() == 2501
    assert bars.height == 2501 * bars["date"].n_unique()
    # built piece by piece, still sorted, and a subset across pieces gives the same rows
    assert bars.equals(bars.sort("ticker", "date"))
    subset = ["SYN0064", "SYN0257", "SYN2500", INDEX]
    picked = market.fetch_bars(subset, date(2000, 1, 3), date(2000, 2, 1))
    assert picked.equals(bars.filter(pl.col("ticker").is_in(subset)))


def test_bars_have_the_schema_and_no_nulls(bars):
    assert bars.schema == BAR_SCHEMA
    assert bars.null_count().row(0) == (0,) * len(BAR_SCHEMA)
    assert bars.group_by("ticker", "date").len()["len"].max() == 1


def test_daily_returns_have_fat_tails(returns):
    kurtosis = _kurtosis(returns)
    assert np.median(kurtosis) > 3.5
    assert (kurtosis > 3).mean() > 0.8


def test_volatility_clusters(returns):
    magnitude = np.abs(returns - returns.mean(axis=0))
    centred = magnitude - magnitude.mean(axis=0)
    denominator = (centred**2).sum(axis=0)
    for lag in range(1, 6):
        acf = (centred[lag:] * centred[:-lag]).sum(axis=0) / denominator
        assert acf.mean() > 0.05, (lag, acf.mean())


def test_average_pairwise_correlation_is_moderate(returns):
    corr = np.corrcoef(returns.T)
    average = corr[np.triu_indices_from(corr, k=1)].mean()
    assert 0.2 <= average <= 0.4


def test_ohlc_bars_are_consistent_with_the_close_path(bars):
    ok = bars.select(
        (pl.col("low") <= pl.min_horizontal("open", "close"))
        & (pl.col("high") >= pl.max_horizontal("open", "close"))
        & (pl.col("low") > 0)
        & (pl.col("vwap") >= pl.col("low"))
        & (pl.col("vwap") <= pl.col("high"))
        & (pl.col("volume") > 0)
    ).to_series()
    assert ok.all()
    for prefix in ("open", "high", "low", "close"):
        assert (bars[prefix] == bars[f"adj_{prefix}"]).all()
    moves = bars.sort("ticker", "date").select(
        (pl.col("open") / pl.col("close").shift(1).over("ticker")).log().abs().alias("gap"),
        pl.col("close").log().diff().over("ticker").abs().alias("move"),
    )
    # the open sits near the previous close: the overnight gap is a fraction of a daily move
    assert moves["gap"].median() < 0.5 * moves["move"].median()
    assert moves["gap"].quantile(0.99) < 0.1
    # the validation rules of the ingest find nothing wrong with clean bars
    clean, quarantine = validate_bars(bars)
    assert quarantine.is_empty()
    assert clean.height == bars.height


def test_volume_rises_with_the_size_of_the_move(bars):
    per_ticker = (
        bars.filter(pl.col("ticker") != INDEX)
        .sort("ticker", "date")
        .with_columns(pl.col("close").log().diff().over("ticker").abs().alias("move"))
        .drop_nulls("move")
        .group_by("ticker")
        .agg(pl.corr("volume", "move", method="spearman").alias("rho"))
    )
    assert per_ticker["rho"].mean() > 0.2
    assert (per_ticker["rho"] > 0).all()


def test_index_is_the_cap_weighted_average_of_its_members(market, bars):
    shares = market.shares_outstanding()
    closes = bars.filter(pl.col("ticker") != INDEX).pivot(on="ticker", index="date", values="close")
    closes = closes.sort("date").select(shares["ticker"].to_list()).to_numpy()
    caps = closes * shares["shares"].to_numpy()
    weights = caps[:-1] / caps[:-1].sum(axis=1, keepdims=True)
    expected = (weights * (closes[1:] / closes[:-1] - 1)).sum(axis=1)
    level = bars.filter(pl.col("ticker") == INDEX).sort("date")["close"].to_numpy()
    np.testing.assert_allclose(level[1:] / level[:-1] - 1, expected, rtol=1e-9, atol=1e-12)
    # a single stock's return is not the index's
    assert not np.allclose(closes[1:, 0] / closes[:-1, 0] - 1, expected)


def test_index_starts_near_100_at_the_origin(market):
    first = market.fetch_bars([INDEX], market.start, date(2000, 1, 10))
    assert first["date"][0] == market.start
    assert 90 < first["close"][0] < 110


def test_planted_signal_has_the_documented_information_coefficient(bars):
    forward = bars.sort("ticker", "date").select(
        "ticker",
        "date",
        (pl.col("close").shift(-5).over("ticker") / pl.col("close") - 1).alias("forward"),
    )
    index_forward = forward.filter(pl.col("ticker") == INDEX).select(
        "date", pl.col("forward").alias("index_forward")
    )
    signal = planted_signal(bars.filter(pl.col("ticker") != INDEX))
    assert signal.columns == ["ticker", "date", "signal"]
    daily_ic = (
        signal.join(forward, on=["ticker", "date"])
        .join(index_forward, on="date")
        .with_columns((pl.col("forward") - pl.col("index_forward")).alias("excess"))
        .drop_nulls()
        .group_by("date")
        .agg(pl.corr("signal", "excess", method="spearman").alias("ic"))
    )
    assert daily_ic.height > 700
    assert 0.02 <= daily_ic["ic"].mean() <= 0.08


def test_planted_signal_is_minus_the_five_session_return(bars):
    one = bars.filter(pl.col("ticker") == "SYN0007").sort("date")
    signal = planted_signal(one)
    close = one["close"].to_numpy()
    np.testing.assert_allclose(signal["signal"].to_numpy(), 1 - close[5:] / close[:-5])
    assert signal["date"].to_list() == one["date"].to_list()[5:]


def test_overlapping_ranges_give_identical_rows(market, bars):
    tickers = ["SYN0003", "SYN0042", INDEX]
    alone = market.fetch_bars(tickers, date(2016, 3, 1), date(2016, 4, 1))
    assert alone.height == 3 * alone["date"].n_unique() > 0
    overlap = bars.filter(
        pl.col("ticker").is_in(tickers),
        pl.col("date").is_between(alone["date"].min(), alone["date"].max()),
    )
    assert alone.equals(overlap)


def test_same_seed_regenerated_is_identical_and_another_seed_differs():
    tickers = ["SYN0001", "SYN0010", INDEX]
    window = (date(2012, 5, 1), date(2012, 8, 1))
    SyntheticMarket(seed=11).fetch_bars(tickers, date(2001, 1, 1), date(2001, 2, 1))
    first = SyntheticMarket(seed=11).fetch_bars(tickers, *window)  # the cached path, extended
    synthetic._panel.cache_clear()  # regenerate the path from the origin in one go
    second = SyntheticMarket(seed=11).fetch_bars(tickers, *window)
    assert first.equals(second)
    other = SyntheticMarket(seed=12).fetch_bars(tickers, *window)
    assert other.height == first.height
    assert not np.allclose(other["close"].to_numpy(), first["close"].to_numpy())


def test_a_tickers_path_does_not_depend_on_the_universe_size():
    window = (date(2003, 1, 1), date(2003, 3, 1))
    small = SyntheticMarket(n_tickers=30).fetch_bars(["SYN0005", "SYN0030"], *window)
    large = SyntheticMarket(n_tickers=100).fetch_bars(["SYN0005", "SYN0030"], *window)
    assert small.equals(large)


def test_only_nyse_sessions_are_returned(bars):
    calendar = xcals.get_calendar("XNYS", start="2010-01-04")
    sessions = calendar.sessions_in_range(FIRST.isoformat(), "2017-12-31").date.tolist()
    assert sorted(bars["date"].unique().to_list()) == sessions
    assert date(2019, 7, 4) not in set(
        SyntheticMarket().fetch_bars([INDEX], date(2019, 7, 1), date(2019, 7, 8))["date"]
    )
    assert bars.select(pl.col("date").dt.weekday().max()).item() <= 5


def test_ranges_are_half_open(market):
    bars = market.fetch_bars(["SYN0001"], date(2024, 3, 4), date(2024, 3, 8))
    assert bars["date"].to_list() == [date(2024, 3, d) for d in (4, 5, 6, 7)]
    assert market.fetch_bars(["SYN0001"], date(2024, 3, 8), date(2024, 3, 8)).is_empty()
    empty = market.fetch_bars(["SYN0001"], date(2024, 3, 9), date(2024, 3, 4))
    assert empty.is_empty()
    assert empty.schema == BAR_SCHEMA


def test_dates_before_the_origin_and_unknown_tickers_are_absent(market):
    early = market.fetch_bars(["SYN0001", "NOPE"], date(1999, 12, 1), date(2000, 1, 6))
    assert early["date"].to_list() == [date(2000, 1, 3), date(2000, 1, 4), date(2000, 1, 5)]
    assert set(early["ticker"]) == {"SYN0001"}
    assert market.fetch_bars(["SYN0001"], date(1999, 1, 1), date(2000, 1, 1)).is_empty()
    assert market.fetch_bars(["NOPE"], date(2010, 1, 1), date(2011, 1, 1)).is_empty()


def test_fault_injection_drops_rows_and_shifts_decimals_at_the_requested_rates(market):
    tickers = market.universe()["ticker"].to_list()
    window = (date(2021, 1, 1), date(2022, 1, 1))
    clean = market.fetch_bars(tickers, *window)
    faulty = SyntheticMarket(missing_day_rate=0.05, decimal_shift_rate=0.02).fetch_bars(
        tickers, *window
    )
    members = clean.filter(pl.col("ticker") != INDEX).height
    missing = clean.height - faulty.height
    assert 0.04 * members < missing < 0.06 * members
    both = faulty.join(clean, on=["ticker", "date"], suffix="_clean")
    assert both.height == faulty.height
    ratio = both.select((pl.col("close") / pl.col("close_clean")).alias("ratio"))["ratio"]
    shifted = ~ratio.is_between(0.999999, 1.000001)
    assert 0.015 * both.height < shifted.sum() < 0.025 * both.height
    factors = ratio.filter(shifted).round(6).unique().sort().to_list()
    assert set(factors) <= {0.01, 0.1, 10.0, 100.0}
    # the whole print is shifted: the bar stays internally consistent; volume is untouched
    assert (both["volume"] == both["volume_clean"]).all()
    assert (both["low"] <= both["close"]).all() and (both["close"] <= both["high"]).all()
    assert faulty.filter(pl.col("ticker") == INDEX).equals(clean.filter(pl.col("ticker") == INDEX))
    # the ingest's spike rule recognises most of them (not at the end of the batch)
    _, quarantine = validate_bars(faulty)
    assert quarantine.filter(pl.col("reason") == "spike_reverted").height > 0.8 * shifted.sum()
    # deterministic too
    again = SyntheticMarket(missing_day_rate=0.05, decimal_shift_rate=0.02).fetch_bars(
        tickers, *window
    )
    assert again.equals(faulty)


def test_default_market_has_no_faults(bars):
    assert bars.group_by("ticker").len()["len"].n_unique() == 1
    jumps = bars.sort("ticker", "date").select(pl.col("close").log().diff().over("ticker").abs())
    assert jumps.to_series().drop_nulls().max() < np.log(1.5)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_tickers": 0}, {"n_sectors": 12}, {"seed": -1}, {"missing_day_rate": 1.5}],
)
def test_invalid_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        SyntheticMarket(**kwargs)
