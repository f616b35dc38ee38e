"""The documented US equity factors (quant_assets/features/factors.py): each base factor against a
value computed by hand with plain Python and numpy, no look-ahead, the sector-relative versions,
one day from its lookback equal to the full history, and the ``factors`` asset through real
Dagster on a DuckDB store."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import dagster as dg
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant_assets.features.assets import _ADJUSTED_BARS, FACTOR_SESSIONS_READ, factors
from quant_assets.features.factors import BASE_FACTORS, FACTOR_NAMES, compute_factors
from quant_assets.ingest.assets import raw_bars, universe
from quant_assets.partitions import next_trading_day, shift_sessions, trading_sessions
from resources.market_data.resource import MarketData
from resources.storage import Store

SESSIONS = trading_sessions(date(2023, 1, 3), date(2024, 3, 29))
SECTORS = {"AAA": "Technology", "BBB": "Technology", "CCC": "Energy", "DDD": "Energy"}
BETAS = (1.3, 0.7, 1.0, 0.9)
# the faults the skip rules are for, inside the windows of the last sessions: a session without a
# benchmark bar, a missing stock bar, a day without volume, and a late listing (short history)
BENCHMARK_GAP = SESSIONS[280]
MISSING_BAR = ("DDD", SESSIONS[270])
ZERO_VOLUME = ("DDD", SESSIONS[295])
LISTED = ("CCC", SESSIONS[120])


def _market() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(bars, benchmark, sectors) of a small seeded market with every fault above."""
    rng = np.random.default_rng(16)
    n = len(SESSIONS)
    m = rng.normal(3e-4, 0.01, n)
    benchmark = pl.DataFrame({"date": SESSIONS, "close": 100.0 * np.cumprod(1.0 + m)})
    frames = []
    for k, (ticker, beta) in enumerate(zip(SECTORS, BETAS, strict=True)):
        # Student-t noise: fat tails, so the skewness is far from 0
        close = 40.0 * (k + 1) * np.cumprod(1.0 + beta * m + 0.012 * rng.standard_t(4, n))
        frames.append(
            pl.DataFrame(
                {
                    "ticker": ticker,
                    "date": SESSIONS,
                    "high": close * (1.0 + np.abs(rng.normal(0.0, 0.01, n))),
                    "close": close,
                    "volume": rng.integers(10_000, 1_000_000, n).astype(np.float64),
                }
            )
        )
    at = lambda fault: (pl.col("ticker") == fault[0]) & (pl.col("date") == fault[1])  # noqa: E731
    bars = (
        pl.concat(frames)
        .with_columns(pl.when(at(ZERO_VOLUME)).then(0.0).otherwise("volume").alias("volume"))
        .filter(~at(MISSING_BAR))
        .filter((pl.col("ticker") != LISTED[0]) | (pl.col("date") >= LISTED[1]))
    )
    sectors = pl.DataFrame({"ticker": list(SECTORS), "sector": list(SECTORS.values())})
    return bars, benchmark.filter(pl.col("date") != BENCHMARK_GAP), sectors


# --- the factors by hand: one ticker's rows as Python lists, a row index i --------------------


@dataclass
class Rows:
    close: list[float]
    high: list[float]
    r: list[float | None]  # return over the ticker's own previous row
    m: list[float | None]  # the benchmark's return over its own previous row, that session
    dv: list[float]


def _rows(ticker: pl.DataFrame, benchmark: pl.DataFrame) -> Rows:
    index = benchmark.sort("date")
    index_close, index_dates = index["close"].to_list(), index["date"].to_list()
    market = {d: index_close[j] / index_close[j - 1] - 1.0 for j, d in enumerate(index_dates) if j}
    close = ticker["close"].to_list()
    return Rows(
        close=close,
        high=ticker["high"].to_list(),
        r=[None] + [close[i] / close[i - 1] - 1.0 for i in range(1, len(close))],
        m=[market.get(d) for d in ticker["date"].to_list()],
        dv=[c * v for c, v in zip(close, ticker["volume"].to_list(), strict=True)],
    )


def _window(values: list, i: int, rows: int) -> list:
    return values[max(0, i - rows + 1) : i + 1]


def _enough(n: int, rows: int) -> bool:
    return n >= 0.8 * rows


def _momentum(s: Rows, i: int, near: int, far: int) -> float | None:
    return s.close[i - near] / s.close[i - far] - 1.0 if i >= far else None


def _high52(s: Rows, i: int) -> float | None:
    highs = _window(s.high, i, 252)
    return s.close[i] / max(highs) - 1.0 if _enough(len(highs), 252) else None


def _ols(s: Rows, i: int, rows: int) -> tuple[float, float] | None:
    """(slope, residual std with n - 2 degrees of freedom) of r on m over the window's pairs."""
    pairs = [
        (x, y)
        for x, y in zip(_window(s.m, i, rows), _window(s.r, i, rows), strict=True)
        if x is not None and y is not None
    ]
    if not _enough(len(pairs), rows):
        return None
    x, y = np.array(pairs).T
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - intercept - slope * x
    return float(slope), math.sqrt(residuals @ residuals / (len(pairs) - 2))


def _present(values: list) -> list[float]:
    return [v for v in values if v is not None]


def _skew(s: Rows, i: int) -> float | None:
    r = np.array(_present(_window(s.r, i, 63)))
    if not _enough(len(r), 63):
        return None
    d = r - r.mean()
    return float(np.mean(d**3) / np.mean(d**2) ** 1.5)


def _max21(s: Rows, i: int) -> float | None:
    r = _present(_window(s.r, i, 21))
    return max(r) if _enough(len(r), 21) else None


def _mean(values: list[float], rows: int) -> float | None:
    return sum(values) / len(values) if _enough(len(values), rows) else None


def _illiquidity(s: Rows, i: int) -> float | None:
    pairs = zip(_window(s.r, i, 21), _window(s.dv, i, 21), strict=True)
    mean = _mean([abs(r) / dv for r, dv in pairs if r is not None and dv > 0], 21)
    return math.log(mean) if mean is not None else None


def _log_mean_dv(s: Rows, i: int, rows: int) -> float | None:
    mean = _mean(_window(s.dv, i, rows), rows)
    return math.log(mean) if mean is not None else None


def _turnover(s: Rows, i: int) -> float | None:
    month, year = _log_mean_dv(s, i, 21), _log_mean_dv(s, i, 252)
    return month - year if month is not None and year is not None else None


def _regression_part(rows: int, part: int) -> Callable[[Rows, int], float | None]:
    def value(s: Rows, i: int) -> float | None:
        fit = _ols(s, i, rows)
        return fit[part] if fit is not None else None

    return value


BY_HAND: dict[str, Callable[[Rows, int], float | None]] = {
    "MOM12_1": lambda s, i: _momentum(s, i, 21, 252),
    "MOM6_1": lambda s, i: _momentum(s, i, 21, 126),
    "REV21": lambda s, i: _momentum(s, i, 0, 21),
    "HIGH52": _high52,
    "BETA252": _regression_part(252, 0),
    "IVOL63": _regression_part(63, 1),
    "SKEW63": _skew,
    "MAX21": _max21,
    "ILLIQ21": _illiquidity,
    "DVOL21": lambda s, i: _log_mean_dv(s, i, 21),
    "TURN21_252": _turnover,
}


def _by_hand(name: str, bars: pl.DataFrame, benchmark: pl.DataFrame) -> list[float | None]:
    """``name`` for every row of ``bars`` in (ticker, date) order."""
    values: list[float | None] = []
    for _, ticker in bars.sort("ticker", "date").group_by("ticker", maintain_order=True):
        rows = _rows(ticker, benchmark)
        values.extend(BY_HAND[name](rows, i) for i in range(ticker.height))
    return values


def _assert_close(
    actual: pl.Series, expected: list[float | None], rtol: float, atol: float = 1e-9
) -> None:
    """Same missing rows, and the present values within the tolerances (the stored float32)."""
    mask = actual.is_null().to_list()
    wrong = [i for i, (a, e) in enumerate(zip(mask, expected, strict=True)) if a != (e is None)]
    assert not wrong, (
        f"{actual.name}: missing where the hand value is present, or back, at rows {wrong}"
    )
    present = np.array([e for e in expected if e is not None])
    np.testing.assert_allclose(actual.drop_nulls().to_numpy(), present, rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def market() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return _market()


@pytest.fixture(scope="module")
def computed(market) -> pl.DataFrame:
    return compute_factors(*market)


@pytest.mark.parametrize("name", BASE_FACTORS)
def test_each_factor_equals_its_value_computed_by_hand(name, market, computed):
    bars, benchmark, _ = market
    assert computed.select("ticker", "date").equals(
        bars.sort("ticker", "date").select("ticker", "date")
    )
    expected = _by_hand(name, bars, benchmark)
    # enough present values that the comparison means something (nulls match trivially)
    assert sum(v is not None for v in expected) >= 150
    _assert_close(computed[name], expected, rtol=1e-5)


def test_the_fault_days_are_skipped_not_propagated(market, computed):
    """The day after the benchmark gap still has a beta (the gap drops out of the regression),
    and the zero-volume day leaves Amihud illiquidity finite (it drops out) while the dollar
    volume still counts it."""
    day_after = next_trading_day(BENCHMARK_GAP)
    row = computed.filter(pl.col("date") == day_after, pl.col("ticker") == "AAA")
    assert row["BETA252"].is_not_null().all() and row["IVOL63"].is_not_null().all()
    ticker, zero_day = ZERO_VOLUME
    after = computed.filter(pl.col("ticker") == ticker, pl.col("date") >= zero_day).head(21)
    assert after["ILLIQ21"].is_not_null().all() and after["DVOL21"].is_not_null().all()
    # the late listing has no year of history: no 52-week high, no 12-1 momentum
    listed = computed.filter(pl.col("ticker") == LISTED[0])
    assert listed["HIGH52"].is_null().all() and listed["MOM12_1"].is_null().all()
    assert listed["REV21"].is_not_null().sum() == listed.height - 21


def _shock_after(
    bars: pl.DataFrame, benchmark: pl.DataFrame, day: date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every bar after ``day`` changed: prices and volumes scaled at random, every third row
    dropped, a new Technology ticker listed, the benchmark moved and one of its days dropped."""
    rng = np.random.default_rng(5)
    later = pl.col("date") > day
    noise = pl.Series(np.exp(rng.normal(0.0, 0.2, bars.height)))
    shocked = bars.with_columns(
        pl.when(later).then(pl.col(c) * noise).otherwise(pl.col(c)).alias(c)
        for c in ("high", "close")
    ).with_columns(pl.when(later).then(pl.col("volume") * 10.0).otherwise("volume"))
    shocked = shocked.with_row_index().filter(~later | (pl.col("index") % 3 != 0)).drop("index")
    newcomer = bars.filter(later, pl.col("ticker") == "AAA").with_columns(ticker=pl.lit("EEE"))
    index = benchmark.with_columns(pl.when(later).then(pl.col("close") * 1.3).otherwise("close"))
    dropped = index.filter(later)["date"][3]
    return pl.concat([shocked, newcomer]), index.filter(pl.col("date") != dropped)


def test_a_session_factors_do_not_change_when_every_later_bar_changes(market, computed):
    bars, benchmark, sectors = market
    day = SESSIONS[260]
    shocked_bars, shocked_index = _shock_after(bars, benchmark, day)
    shocked = compute_factors(
        shocked_bars,
        shocked_index,
        sectors.vstack(pl.DataFrame({"ticker": ["EEE"], "sector": ["Technology"]})),
    )
    up_to = pl.col("date") <= day
    assert_frame_equal(shocked.filter(up_to), computed.filter(up_to), check_exact=True)
    # the shock did reach the later sessions
    last = pl.col("date") == SESSIONS[-1]
    assert not shocked.filter(last, pl.col("ticker") == "AAA").equals(
        computed.filter(last, pl.col("ticker") == "AAA")
    )


def test_sector_relative_factors_are_the_factor_minus_its_sector_mean(market, computed):
    _, _, sectors = market
    frame = computed.join(sectors, on="ticker")
    for name in BASE_FACTORS:
        base = pl.col(name).cast(pl.Float64)
        scale = max(1.0, float(frame[name].abs().max() or 0.0))
        expected = frame.select(base - base.mean().over("date", "sector"))[name]
        _assert_close(frame[f"{name}_SEC"], expected.to_list(), rtol=1e-6, atol=1e-6 * scale)
        means = frame.group_by("date", "sector").agg(pl.col(f"{name}_SEC").cast(pl.Float64).mean())
        assert means[f"{name}_SEC"].drop_nulls().abs().max() <= 1e-6 * scale
    # Energy never has two 12-1 momenta (CCC lists too late): DDD is alone, its relative value 0
    alone = computed.filter(pl.col("ticker") == "DDD")["MOM12_1_SEC"].drop_nulls()
    assert alone.len() > 0 and (alone == 0.0).all()


def test_unclassified_stocks_get_no_sector_relative_factors(market, computed):
    """Two names nobody classified share nothing (quant_core.sectors): a sector-relative value
    for them is missing, never a deviation from an 'Unclassified' pool; the others keep theirs."""
    bars, benchmark, _ = market
    sectors = pl.DataFrame(
        {"ticker": ["AAA", "CCC", "DDD"], "sector": ["Unclassified", "Energy", "Energy"]}
    )
    frame = compute_factors(bars, benchmark, sectors)
    unclassified = frame.filter(pl.col("ticker").is_in(["AAA", "BBB"]))
    assert unclassified.select(pl.col("^.*_SEC$").is_null().all()).row(0) == (True,) * 11
    energy = pl.col("ticker").is_in(["CCC", "DDD"])
    assert_frame_equal(frame.filter(energy), computed.filter(energy), check_exact=True)
    assert frame.select(BASE_FACTORS).equals(computed.select(BASE_FACTORS))


@pytest.mark.parametrize("index", [len(SESSIONS) - 1, 285])
def test_one_day_from_its_lookback_equals_the_full_history(index, market, computed):
    """What the asset reads for one session (its FACTOR_SESSIONS_READ sessions and the day)
    gives the full-history row, also on a day right after the benchmark gap and a missing bar."""
    bars, benchmark, sectors = market
    day = SESSIONS[index]
    read = (pl.col("date") >= shift_sessions(day, FACTOR_SESSIONS_READ)) & (pl.col("date") <= day)
    one_day = compute_factors(bars.filter(read), benchmark.filter(read), sectors).filter(
        pl.col("date") == day
    )
    full = computed.filter(pl.col("date") == day)
    assert one_day.height == full.height == 4
    assert one_day.select(pl.col(FACTOR_NAMES).is_not_null().sum()).sum_horizontal().item() >= 70
    assert_frame_equal(one_day, full, rel_tol=1e-6, abs_tol=1e-6)


# --- the asset, through Dagster, on a DuckDB store --------------------------------------------

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
FIRST, LAST = "2023-01-03", "2024-03-28"


def _resources(store: Store) -> dict:
    # missing (ticker, session) bars, as real data has them
    return {"store": store, "market_data": MarketData(n_tickers=12, missing_day_rate=0.01)}


def _list_newcomer(store: Store, sessions: int) -> None:
    """A stock listed ``sessions`` sessions before the end, not in the universe: too little
    history for most factors, and no sector."""
    start = shift_sessions(date.fromisoformat(LAST), sessions - 1)
    end = next_trading_day(date.fromisoformat(LAST))
    window = store.read("raw_bars", start, end)
    first = window["ticker"].sort()[0]
    newcomer = window.filter(pl.col("ticker") == first).with_columns(ticker=pl.lit("NEWCO"))
    store.write_partition("raw_bars", pl.concat([window, newcomer]), start, end)


def _expected(store: Store) -> pl.DataFrame:
    """compute_factors on every stored bar, as the backfill should have stored it."""
    bars = store.read("raw_bars")
    members = store.read("universe")
    benchmark = members.filter(pl.col("is_benchmark"))["ticker"].item()
    stocks = bars.filter(pl.col("ticker") != benchmark).select(_ADJUSTED_BARS)
    index = bars.filter(pl.col("ticker") == benchmark).select("date", close="adj_close")
    return compute_factors(stocks, index, members.select("ticker", "sector"))


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[Store, dg.ExecuteInProcessResult]:
    store = Store(url=str(tmp_path_factory.mktemp("factors") / "quant.duckdb"))
    tags = dict(zip(RANGE, (FIRST, LAST), strict=True))
    assert dg.materialize([universe, raw_bars], resources=_resources(store), tags=tags).success
    _list_newcomer(store, 30)
    result = dg.materialize([factors], resources=_resources(store), tags=tags)
    assert result.success
    return store, result


def test_the_asset_stores_compute_factors_of_the_stored_bars(stored):
    store, result = stored
    rows = store.read("factors")
    assert_frame_equal(rows, _expected(store), check_exact=True)
    last = rows.filter(pl.col("date") == date.fromisoformat(LAST))
    assert last.height == 13
    # a year of bars: every stock has its 12-1 momentum on the last day but the newcomer
    assert last.filter(pl.col("MOM12_1").is_null())["ticker"].to_list() == ["NEWCO"]
    newcomer = last.filter(pl.col("ticker") == "NEWCO")
    assert newcomer["REV21"].is_not_null().all() and newcomer["REV21_SEC"].is_null().all()
    metadata = {
        k: v.value for k, v in result.asset_materializations_for_node("factors")[0].metadata.items()
    }
    assert metadata["rows"] == rows.height
    assert metadata["sessions"] == len(trading_sessions(date(2023, 1, 3), date(2024, 3, 29)))
    assert metadata["tickers"] == 13 and metadata["features"] == len(FACTOR_NAMES) == 22
    assert metadata["lookback_sessions_read"] == FACTOR_SESSIONS_READ
    shares = metadata["missing_share_by_factor"]
    assert set(shares) == set(BASE_FACTORS)
    assert shares["MOM12_1"] == pytest.approx(rows["MOM12_1"].is_null().mean(), abs=1e-4)
    assert (metadata["first_date"], metadata["last_date"]) == (FIRST, LAST)


def test_one_partition_recomputed_from_its_lookback_equals_the_backfill(stored):
    store, _ = stored
    day = date(2024, 3, 27)
    one_day = (day, next_trading_day(day))
    backfilled = store.read("factors", *one_day)
    assert backfilled["MOM12_1"].is_not_null().sum() == 12  # all but the newcomer
    # the lookback the run reads has holes: some stock misses bars in it
    lookback = store.read("raw_bars", shift_sessions(day, FACTOR_SESSIONS_READ), one_day[1])
    per_ticker = lookback.group_by("ticker").len()["len"]
    assert per_ticker.filter(per_ticker > 30).min() < FACTOR_SESSIONS_READ + 1
    result = dg.materialize([factors], resources=_resources(store), partition_key=day.isoformat())
    assert result.success
    assert_frame_equal(store.read("factors", *one_day), backfilled, rel_tol=1e-6, abs_tol=1e-6)


def test_a_session_without_a_year_of_history_stores_nulls_and_does_not_fail(stored):
    store, _ = stored
    result = dg.materialize([factors], resources=_resources(store), partition_key=FIRST)
    assert result.success
    first = store.read("factors", date(2023, 1, 3), date(2023, 1, 4))
    assert first.height == 12
    assert first.select(pl.col(FACTOR_NAMES).is_null().all()).row(0) == (True,) * 22
